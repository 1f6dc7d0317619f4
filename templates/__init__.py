"""Templates rendered by ``xlhand new``: ``hand-plugin/`` is the pip package of one hand (see ``xlhand.packaging.newhand``).

Template files are plain text with ``{{variable}}`` placeholders in their contents and names; they ship as package
data and are never imported.
"""

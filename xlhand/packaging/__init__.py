"""Hands as pip packages: `xlhand new hand`, the template renderer, copying a hand's files, hand.toml."""

"""VLA bundles (DESIGN section 7): config, the directory store, the model card."""

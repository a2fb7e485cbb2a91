"""What comes in: the catalog table, uploaded images, the real user photos."""

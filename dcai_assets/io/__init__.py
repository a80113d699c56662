"""IO managers."""

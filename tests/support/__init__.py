"""Test helpers shared across test directories (import as ``support.<module>``)."""

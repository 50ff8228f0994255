"""Footage for segments: stock clips found in the library or at providers."""

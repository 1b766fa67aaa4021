"""Test support: the real registry's fixtures, a token issuer and an image generator."""

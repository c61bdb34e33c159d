"""Checking rows against their contract: header, types, rules, duplicates, rescued data."""

"""Domain package shared by every Mon soutien psy function."""

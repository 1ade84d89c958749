"""Reviewer scope: which departments a reviewer reviews, set by admins only, and carried in access tokens."""

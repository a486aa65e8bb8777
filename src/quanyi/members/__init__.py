"""Buyer accounts (会员): members of the platform, their sessions, sign-in codes and account pages."""

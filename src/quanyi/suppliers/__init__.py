"""Suppliers (供应商): contracts, adapters to their APIs, product mapping and sync, real-time routing."""

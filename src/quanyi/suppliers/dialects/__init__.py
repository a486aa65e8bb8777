"""Wire dialects of supplier APIs; importing this package registers every built-in one."""

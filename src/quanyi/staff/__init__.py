"""Staff accounts (员工账号): passwords, permissions and login sessions for the admin API."""

"""Accounts and access: who a request acts as (sessions, API keys, identity-provider and development
tokens), and the stored people, grants, invitations and keys behind them."""

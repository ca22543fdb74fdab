"""The HTTP API (aiohttp + msgspec on uvloop): shops, catalog, menus, supplies."""

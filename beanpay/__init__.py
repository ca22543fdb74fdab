"""beanpay's shared kernel: configuration, logging, database access, migrations, events, CLI.

Kept apart from the service packages (`api`, `engine`, `indexer`, `chains`) because every one of
them needs it and none of them owns it.
"""

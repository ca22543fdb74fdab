"""The pages people use, rendered by the server: the hosted checkout and receipts (more faces follow).

No front-end build: Jinja templates, a small stylesheet and script served by beanpay itself, and a
strict Content-Security-Policy. Every page works without JavaScript; with it, it updates live.
"""

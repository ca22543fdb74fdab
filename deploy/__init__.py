"""Deployment: the local stack of real services (`beanpay dev`) and the files it needs."""

"""The composition root: the `beanpay` command and the runner that puts services into processes.

It sits above every other package (it imports them all); nothing imports it.
"""

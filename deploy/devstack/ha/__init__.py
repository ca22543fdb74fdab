"""`beanpay dev up --ha`: the stack again, with no single point of failure, on engines operators trust.

PostgreSQL: a primary and a synchronous standby managed by Patroni, with three etcd members as its store;
clients reach the primary through HAProxy, which asks each node's Patroni REST API who leads. Kafka: three
KRaft nodes, replication factor 3, min.insync.replicas 2. Redis: a primary, a replica and three Sentinels.
beanpay: two processes of every service, the API ones behind HAProxy. Nothing here decides leadership itself.
"""

"""Exchange rates: providers behind one interface, a Redis-cached service with stale-rate protection."""

"""What tests of several tiers share to drive beanpay from outside: people signing in, and the like."""

"""The Solidity contracts beanpay deploys and the compiled artifacts it reads (package data)."""

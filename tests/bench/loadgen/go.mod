module beanpay/loadgen

go 1.22

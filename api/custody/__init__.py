"""Where merchants' money goes and how it leaves: wallets, refunds, payouts."""

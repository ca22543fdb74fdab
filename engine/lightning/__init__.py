"""Lightning as a second rail for Bitcoin payments: nodes (the shop's own or the platform's), invoices
issued for payments, and the service that follows each node's settlements."""

"""Bitcoin: a node-agnostic JSON-RPC client, a raw block parser, BIP84 watch-only addresses."""

import os

from beanpay.config import default_state_dir

# bitcoinlib creates a database, logs and config files in its data folder when imported (~/.bitcoinlib
# by default); keep them in the state folder, never in the user's home
os.environ.setdefault("BCL_DATA_DIR", str(default_state_dir() / "bitcoinlib"))

-- name: tips
-- Every chain's indexed tip: checkout streams re-read confirming payments when one moves.
SELECT chain, tip_height FROM chain_cursors;

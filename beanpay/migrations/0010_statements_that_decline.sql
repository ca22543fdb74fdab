-- A statement sent on its own (no BEGIN around it) commits as it ends, so the row locks it takes are
-- released there and then, not a round trip and a turn of the client's event loop later. Placing an
-- order does this in the common case; a statement that finds the case is not the common one calls
-- this to abort itself (nothing it wrote survives), and the caller does the work in a transaction.
CREATE FUNCTION needs_transaction(reason text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'needs a transaction: %', reason USING ERRCODE = 'BPT01';
END
$$;

-- 0005: wake the engine only when a deposit appears or its status changes. A confirmation count
-- going 1 -> 2 changes no payment's status; enqueueing it tripled the engine's work per block.
-- The API reads live confirmation counts from the deposits themselves.
DROP TRIGGER deposits_enqueue ON deposits;
CREATE TRIGGER deposits_enqueue_insert AFTER INSERT ON deposits
    FOR EACH ROW EXECUTE FUNCTION deposits_enqueue();
CREATE TRIGGER deposits_enqueue_status AFTER UPDATE OF status ON deposits
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION deposits_enqueue();

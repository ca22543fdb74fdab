"""Operations drills against real processes: restore from backup to a point in time, and (with the
highly available stack) failures of every part under load. Each ends by checking the invariants."""

from beanpay.indexer.replacements import Absences, Verdict, conflict, judge

A, B = ("aa" * 32, 0), ("bb" * 32, 1)
T, BUMP, OTHER = "11" * 32, "cc" * 32, "dd" * 32


def test_a_conflict_in_the_mempool_is_a_replacement_whatever_the_node_says_of_the_inputs() -> None:
    # btcd's gettxout does not see mempool spends: both inputs look unspent, yet the bump spends one
    assert judge(T, [A, B], [True, True], {B: BUMP}, {BUMP}) == Verdict("replaced", BUMP)
    assert conflict(T, [A, B], {B: BUMP}, {BUMP}) == BUMP


def test_a_mined_conflict_is_a_replacement_named_when_it_was_seen() -> None:
    assert judge(T, [A, B], [True, False], {B: OTHER}, set()) == Verdict("replaced", OTHER)
    assert judge(T, [A, B], [False, True], {}, set()) == Verdict("replaced", None)  # never passed through our mempool


def test_the_transaction_itself_is_never_its_own_replacement() -> None:
    spenders = {A: T}  # it was seen spending its own inputs
    assert conflict(T, [A], spenders, {T}) is None
    assert judge(T, [A], [False], spenders, set()) == Verdict("replaced", None)
    assert judge(T, [A], [True], spenders, set()) == Verdict("dropped")


def test_every_input_unspent_and_no_conflict_is_a_drop() -> None:
    assert judge(T, [A, B], [True, True], {B: BUMP}, set()) == Verdict("dropped")  # the bump left too


def test_absences_count_scans_in_a_row_and_time_since_first_missed() -> None:
    seen = Absences()
    assert seen.update({"t1", "t2"}, now=100.0) == {"t1": (0.0, 1), "t2": (0.0, 1)}
    assert seen.update({"t1"}, now=105.0) == {"t1": (5.0, 2)}  # t2 came back: forgotten
    assert seen.update({"t1", "t2"}, now=110.0) == {"t1": (10.0, 3), "t2": (0.0, 1)}

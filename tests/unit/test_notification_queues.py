import datetime as dt
import uuid

from beanpay.engine.notifications.sender import Due, queues

T0 = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def due(channel: str, recipient: str, title: str, seconds: int) -> Due:
    return Due(uuid.uuid4(), uuid.uuid4(), channel, None, None, recipient, title, "", None, 1,
               T0 + dt.timedelta(seconds=seconds))


def test_each_address_gets_its_messages_oldest_first_in_one_queue() -> None:
    ready, paid = due("push", "dev-1", "Your order is ready", 5), due("push", "dev-1", "Payment received", 1)
    mail = due("email", "ana@example.com", "Payment received", 2)
    other = due("push", "dev-2", "Payment received", 3)
    found = queues([ready, other, mail, paid])
    assert [[d.title for d in q] for q in found] == [["Payment received", "Your order is ready"],
                                                      ["Payment received"], ["Payment received"]]
    assert [q[0].recipient for q in found] == ["dev-1", "ana@example.com", "dev-2"]


def test_the_same_recipient_on_two_channels_is_two_queues() -> None:
    assert len(queues([due("push", "x", "a", 1), due("email", "x", "b", 2)])) == 2
    assert queues([]) == []

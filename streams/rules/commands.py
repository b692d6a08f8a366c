"""What the rules' findings share: their facts, their subjects and the commands they call for.

``COMMANDS`` builds the command of a finding by its type, from (subject, key, trigger
event, view, at): the reservation subject is released, the payment key refunded, the
shipment subject held, the order's shipment expedited, the order marked paid.
"""

from __future__ import annotations

from streams.model import CommandType, Step
from streams.rules.entities import OrderView
from streams.rules.spec import BuildCommand, CommandSpec

CT = CommandType

Evidence = list[Step | None]


def reservation_facts(view: OrderView, reservation: str, at: int) -> dict[str, str]:
    """A reservation's id, sku and quantity as of ``at``."""
    line = view.reservation_line(reservation, at)
    facts = {"reservation_id": reservation}
    if line:
        facts.update(sku=line[0], quantity=str(line[1]))
    return facts


def payment_facts(payment: str, trigger: Step) -> dict[str, str]:
    """A payment's id, amount and currency (those of its trigger event)."""
    return {"payment_id": payment, "amount": str(trigger.amount),
            "currency": str(trigger.currency)}


def _release(subject: str, key: str, trigger: Step, view: OrderView, at: int) -> CommandSpec:
    line = view.reservation_line(subject, at)
    sku, quantity = line if line else (None, None)
    return CommandSpec(CT.RELEASE_STOCK, subject, sku=sku, quantity=quantity)


def _refund(subject: str, key: str, trigger: Step, view: OrderView, at: int) -> CommandSpec:
    return CommandSpec(CT.REFUND_PAYMENT, key, amount=trigger.amount, currency=trigger.currency)


def _hold(subject: str, key: str, trigger: Step, view: OrderView, at: int) -> CommandSpec:
    return CommandSpec(CT.HOLD_SHIPMENT, subject)


def _expedite(subject: str, key: str, trigger: Step, view: OrderView, at: int) -> CommandSpec:
    return CommandSpec(CT.EXPEDITE_SHIPMENT, view.order_id)


def _mark_paid(subject: str, key: str, trigger: Step, view: OrderView, at: int
               ) -> CommandSpec:
    return CommandSpec(CT.MARK_ORDER_PAID, view.order_id, amount=trigger.amount,
                       currency=trigger.currency, payment_id=key)


#: command type -> its target and fields: the reservation subject is released, the payment
#: key refunded, the shipment subject held, the order's shipment expedited, the order marked
#: paid with the payment key
COMMANDS: dict[CommandType, BuildCommand] = {
    CT.RELEASE_STOCK: _release,
    CT.REFUND_PAYMENT: _refund,
    CT.HOLD_SHIPMENT: _hold,
    CT.EXPEDITE_SHIPMENT: _expedite,
    CT.MARK_ORDER_PAID: _mark_paid,
}


def the_order(view: OrderView, key: str, at: int) -> list[str]:
    """The order itself, as the one subject of a decision."""
    return [view.order_id]


def active_reservations(view: OrderView, key: str, at: int) -> list[str]:
    """The reservations active at ``at``, as the subjects of a decision."""
    return view.active_reservations(at)

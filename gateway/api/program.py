"""``/api/v1/program``: the running loyalty program, for operators and integrators.

``POST /api/v1/program/simulate`` dry-runs sample carts (customer, store, date, lines) under the
program the gateway runs and answers what ``gateway simulate`` prints: discounts and points per
line, the maximum payable by points, referral points, and the explanation. Nothing is booked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from contracts.errors import LoyaltyError
from contracts.program import SimulationRequest, SimulationResponse
from gateway.api.auth import require_operator
from gateway.api.v1 import ERRORS
from gateway.config import ClientConfig, GatewayConfig
from gateway.core.simulation import simulate

router = APIRouter(prefix="/api/v1/program", tags=["program"])

Operator = Annotated[ClientConfig, Depends(require_operator)]


@router.post("/simulate", response_model=SimulationResponse, responses=ERRORS)
def simulate_carts(body: SimulationRequest, request: Request, _operator: Operator) -> SimulationResponse:
    """Price sample carts under the running program. Operator credentials; changes nothing.
    A cart the program refuses (too many points, an unknown promo code) fails the request with
    that error's code and the cart's position in ``details.cart``."""
    config: GatewayConfig = request.app.state.config
    results = []
    for index, cart in enumerate(body.carts):
        try:
            results.append(simulate(config.program, cart))
        except LoyaltyError as exc:
            exc.details.setdefault("cart", index)
            raise
    return SimulationResponse(program=config.program.name, results=results)

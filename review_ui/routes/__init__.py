"""The review app's routes, one module per resource; ``router`` includes them all."""

from fastapi import APIRouter

from review_ui.routes import (
    calibration,
    health,
    login,
    metrics,
    pages,
    providers,
    reviews,
    run_feed,
    run_pages,
    runs,
    slack,
)

__all__ = ["router"]

router = APIRouter()
router.include_router(login.router)
router.include_router(pages.router)
router.include_router(run_feed.router)
router.include_router(runs.router)
router.include_router(run_pages.router)
router.include_router(reviews.router)
router.include_router(slack.router)
router.include_router(providers.router)
router.include_router(health.router)
router.include_router(calibration.router)
router.include_router(metrics.router)

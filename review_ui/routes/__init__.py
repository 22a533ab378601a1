"""The review app's routes, one module per resource; ``router`` includes them all."""

from fastapi import APIRouter

from review_ui.routes import health, login, metrics, pages, reviews, runs, slack

__all__ = ["router"]

router = APIRouter()
router.include_router(login.router)
router.include_router(pages.router)
router.include_router(runs.router)
router.include_router(reviews.router)
router.include_router(slack.router)
router.include_router(health.router)
router.include_router(metrics.router)

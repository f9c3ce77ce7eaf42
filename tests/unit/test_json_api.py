"""The JSON answers every service's HTTP API gives to a wrong path or method (replyflow.service.json_api)."""

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from replyflow.service import json_api


async def get_creator(request: Request) -> JSONResponse:
    return JSONResponse({"got": request.path_params["creator_id"]})


async def put_creator(request: Request) -> JSONResponse:
    return JSONResponse({"put": request.path_params["creator_id"]})


@pytest.fixture
async def api():
    app = json_api([Route("/v1/creators/{creator_id}", get_creator, methods=["GET"]),
                    Route("/v1/creators/{creator_id}", put_creator, methods=["PUT"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://api") as client:
        yield client


async def test_each_method_of_a_path_reaches_its_own_handler(api) -> None:
    assert (await api.get("/v1/creators/mia")).json() == {"got": "mia"}
    assert (await api.put("/v1/creators/mia")).json() == {"put": "mia"}
    assert (await api.head("/v1/creators/mia")).status_code == 200


async def test_a_method_the_path_does_not_take_is_a_405_allowing_every_method_it_does(api) -> None:
    response = await api.delete("/v1/creators/mia")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PUT"}
    assert response.json() == {"error": "DELETE /v1/creators/mia: Method Not Allowed"}


async def test_an_unknown_path_is_a_json_404_naming_it(api) -> None:
    response = await api.get("/v1/creator/mia")
    assert response.status_code == 404
    assert response.json() == {"error": "GET /v1/creator/mia: Not Found"}

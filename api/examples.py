"""An example of every request body, for /docs and generated clients (`api.openapi`).

Each one succeeds when sent as it is against the demo province (``nocert demo``: the departments and
categories of `api.demo`), by the principal its operation needs, on an object in the right state
(tests/api/test_openapi_examples.py sends each one).
"""

from __future__ import annotations

from typing import Any

from domain.identifiers import make_id_number, make_uscc

#: An applicant whose household is registered in 鼓楼区 (350102), and a second number of the same person.
APPLICANT_ID_NUMBER = make_id_number("35010219900101123")
OTHER_ID_NUMBER = make_id_number("35010219850505321")

EXAMPLES: dict[str, dict[str, Any]] = {
    "DepartmentCreate": {
        "id": "fz-cangshan-police",
        "name": "福州市公安局仓山分局",
        "uscc": make_uscc("11350104MB0345678"),
        "roles": ["issuer"],
        "kind": "police",
        "region": "350104",
    },
    "DepartmentPatch": {"name": "福州市公安局台江分局", "region": "350103", "status": "active"},
    "KeyRevocation": {"reason": "加密设备到期更换", "effective_at": "2099-01-01T00:00:00Z"},
    "CategoryCreate": {
        "code": "adoption-registration",
        "name": "收养登记证明",
        "issuer_kind": "civil-affairs",
        "modes": ["collaboration", "commitment"],
        "sla_hours": 72,
        "claims_schema": {
            "type": "object",
            "properties": {"question": {"type": "string"}},
            "required": ["question"],
        },
    },
    "CategoryPatch": {"name": "户籍证明", "sla_hours": 24, "status": "active"},
    "CheckCreate": {
        "category": "household-registration",
        "matter": {"code": "real-estate-deregistration", "name": "不动产注销登记"},
        "applicant": {"name": "林某某", "id_number": APPLICANT_ID_NUMBER},
        "claims": {"question": "两个身份证号码是否为同一人", "other_id_number": OTHER_ID_NUMBER},
        "purpose": "不动产注销登记身份一致性核验",
        "consent": {"method": "face", "reference": "FACE-2024-0001"},
        "issuer": "fz-gulou-police",
    },
    "InfoRequest": {"question": "请补充申请人曾用名"},
    "InfoSupply": {"answer": "申请人无曾用名"},
    "Forward": {"to": "fz-police", "reason": "申请人户籍已迁至市局直管辖区"},
    "Reply": {"conclusion": "confirmed", "statements": {"same_person": True, "note": "经核查为同一人"}, "valid_days": 90},
    "Decline": {"reason_code": "no_record", "note": "未查到相关户籍记录"},
    "Withdraw": {"reason": "申请人撤回申请"},
    "Close": {"outcome": "applicant_submitted"},
    "Empty": {},
    "ProofRevocation": {"reason": "复核发现信息有误"},
    # Any text is judged; this one is no compact JWS, so the answer is a 200 with valid false and "malformed".
    "VerifyRequest": {"jws": "eyJhbGciOiJFZERTQSJ9.eyJ0eXBlIjoibm9jZXJ0LnByb29mLnYxIn0.c2lnbmF0dXJl"},
}

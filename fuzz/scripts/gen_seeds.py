#!/usr/bin/env python3
"""Write the seed corpora under fuzz/seeds/ (run from anywhere: `python3 fuzz/scripts/gen_seeds.py`).

Pages are rendered the way the sandbox twins render them (src/sandbox/{catalog,trackly,offerslook,
youmi,affise}.rs: same catalogue function, same wire shapes and quirks), plus the fixture shapes
and error bodies of /work/shared/APIS.md that the twins do not serve. Each seed starts with the
three control bytes of fuzz_targets/common/mod.rs, each XOR '0': status (+ Retry-After), cursor
page, the target's source variant. "000" = HTTP 200, page 1, variant 0; "<00" = HTTP 429 with
Retry-After; "021" = HTTP 200, page 2, variant 1.

The config seeds are the repository's own config files (config/*.toml, config/examples/*.toml)
and the fuzz targets' fixed configs.
"""

import json
import os
import re
import shutil
from datetime import datetime, timezone

FUZZ = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(FUZZ)
SEEDS = os.path.join(FUZZ, "seeds")
M64 = (1 << 64) - 1

COUNTRIES = ["US", "GB", "DE", "FR", "BR", "IN", "JP", "CA", "AU", "ES"]
CATEGORIES = ["Games", "Finance", "Dating", "Shopping", "Utilities", "Health"]


def mix(seed, i):
    z = (seed ^ ((i * 0x9E3779B97F4A7C15) & M64)) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def generate(seed, index):
    """catalog::generate"""
    h = mix(seed, index)
    n = 1 + h % 3
    first = (h >> 8) % len(COUNTRIES)
    return {
        "index": index,
        "id": "%08x%016x" % (index & 0xFFFFFFFF, h),
        "name": "Offer %d – %s" % (index, CATEGORIES[(h >> 16) % len(CATEGORIES)]),
        "payout_cents": 50 + (h >> 20) % 2000,
        "payout_type": "cpc" if index % 5 == 0 else "cpa",
        "status": "paused" if index % 17 == 3 else "active",
        "tracking_url": "https://track.example/click?o=%d&aff_click_id={click_id}" % index,
        "advertiser_id": "adv-%d" % ((h >> 32) % 40),
        "countries": [COUNTRIES[(first + k * 3) % len(COUNTRIES)] for k in range(n)],
        "category": CATEGORIES[(h >> 24) % len(CATEGORIES)],
        "created_at": 1_735_689_600 + (index % 86_400) * 60,
    }


def ts(unix, fmt):
    return datetime.fromtimestamp(unix, timezone.utc).strftime(fmt)


def offers(ids):
    return [generate(7, i) for i in ids]


# --- Trackly (sandbox/trackly.rs) ---------------------------------------------------------

def trackly_offer(o):
    t = "%Y-%m-%dT%H:%M:%S"
    return {
        "id": o["id"], "name": o["name"], "tracking_url": o["tracking_url"],
        "external_platform": "everflow" if o["index"] % 3 == 0 else None,
        "external_id": "ef-%d" % o["index"] if o["index"] % 3 == 0 else None,
        "advertiser_id": o["advertiser_id"], "payout": o["payout_cents"] / 100.0,
        "payout_type": o["payout_type"], "filter_bots": o["index"] % 2 == 0,
        "status": o["status"],
        "metadata": {"countries": ",".join(o["countries"]), "category": o["category"]},
        "created_at": ts(o["created_at"], t) + ("Z" if o["index"] % 2 == 0 else ""),
        "updated_at": ts(o["created_at"] + 3600, t) + ("" if o["index"] % 2 == 0 else "Z"),
    }


def trackly_page(os_, page, per_page, total):
    return {"offers": [trackly_offer(o) for o in os_],
            "pagination": {"page": page, "per_page": per_page, "total": total,
                           "total_pages": -(-total // per_page)}}


# --- Offerslook (sandbox/offerslook.rs) ----------------------------------------------------

def ol_status(o):
    if o["status"] == "archived":
        return "deleted"
    if o["status"] == "paused":
        return "paused"
    return "pending" if o["index"] % 11 == 5 else "active"


def ol_link(o):
    if o["index"] % 13 == 7:
        return None
    return "http://demo.go.offerslook.com/aff_c?offer_id=%d&aff_id=1" % o["index"]


def ol_flat(o):
    return {
        "id": 10_000 + o["index"], "name": o["name"],
        "advertiser_id": int(o["advertiser_id"][4:]),
        "start_date": o["created_at"], "end_date": o["created_at"] + 180 * 86_400,
        "status": ol_status(o), "offer_approval": 2, "revenue_type": "RPA",
        "revenue": "%.2f" % (o["payout_cents"] * 1.25 / 100.0),
        "payout_type": "CPC" if o["payout_type"] == "cpc" else "CPA",
        "payout": "%.2f" % (o["payout_cents"] / 100.0), "currency": "USD",
        "preview_url": "https://play.google.com/store/apps/details?id=com.demo.o%d" % o["index"],
        "tracking_link": ol_link(o), "description": "%s offer" % o["category"],
        "category": "%s,Mobile" % o["category"],
    }


def ol_batch(o):
    targets = [{"country_code": [c]} if i == 1 else {"country_code": c}
               for i, c in enumerate(o["countries"])]
    row = {
        "offer": {
            "id": 10_000 + o["index"], "name": o["name"], "status": ol_status(o),
            "payout": o["payout_cents"] / 100.0, "currency": "USD",
            "preview_url": "https://play.google.com/store/apps/details?id=com.demo.o%d" % o["index"],
            "tracking_link": ol_link(o), "app_id": "com.demo.o%d" % o["index"],
            "category": "%s,Mobile" % o["category"], "carrier": [],
            "description": "%s offer" % o["category"],
            "thumbnail": "https://cdn.demo/o%d.png" % o["index"],
            "end_date": o["created_at"] + 180 * 86_400,
        },
        "offer_geo": {"type": "include", "target": targets},
        "offer_platform": {"target": [{"system": "Android" if o["index"] % 2 == 0 else "iOS"}]},
        "offer_creative": [{"url": "https://cdn.demo/b%d.png" % o["index"]}],
    }
    if o["index"] % 4 != 0:
        row["offer_cap"] = {"cap_conversion": 100}
    return row


def ol_page(rows, page, limit, total):
    return {"code": 0, "message": "Success",
            "data": {"rowset": rows, "totalPages": -(-total // limit), "totalRows": total,
                     "offset": page, "limit": limit}}


# --- Youmi / Adxmi (sandbox/youmi.rs) ------------------------------------------------------

def ym_seed_row(o):
    return {
        "id": 2_957_000_000 + o["index"], "icon": "https://cdn.youmi.demo/%d.png" % o["index"],
        "name": o["name"], "conversion_flow": "1.Download and open the app\n2.Sign up",
        "tracking_link": "http://ad.api.yyapi.net/v1/tracking?id=%d" % o["index"],
        "payout": "%.2f" % (o["payout_cents"] / 100.0),
        "preview_url": "https://play.google.com/store/apps/details?id=com.y.o%d" % o["index"],
        "package": "com.y.o%d" % o["index"], "offer_type": "app", "payout_type": "fixed",
        "os": "android", "countries": o["countries"], "os_version": "",
    }


def ym_v2_row(o):
    return {
        "id": str(2_957_000_000 + o["index"]), "name": o["name"],
        "package": "com.y.o%d" % o["index"], "adtxt": "%s app" % o["category"], "kpi": "",
        "payout": o["payout_cents"] / 100.0, "cap": 0,
        "trackinglink": "http://ad.api.yyapi.net/v2/tracking?id=%d" % o["index"],
        "country": o["countries"], "os": ["android"], "traffic": "non-incentive",
        "preview_url": "https://play.google.com/store/apps/details?id=com.y.o%d" % o["index"],
        "icon_url": "https://cdn.youmi.demo/%d.png" % o["index"],
        "payout_type": "CPA" if o["payout_type"] == "cpc" else "CPI", "category": o["category"],
    }


# --- Affise (sandbox/affise.rs) ------------------------------------------------------------

def af_row(o, partner):
    lower = [c.lower() for c in o["countries"]]
    payments = [{"countries": lower, "cities": [], "devices": [], "os": [], "goal": "1",
                 "revenue": o["payout_cents"] / 100.0, "total": o["payout_cents"] * 1.5 / 100.0,
                 "currency": "usd", "title": "Install", "type": "fixed",
                 "country_exclude": False, "with_regions": False, "url": None}]
    if o["index"] % 3 == 0:
        payments.append({"countries": ["us"], "cities": [], "devices": [], "os": [], "goal": "2",
                         "revenue": 7.5, "total": 10, "currency": "USD", "title": "Purchase",
                         "type": "fixed", "country_exclude": False, "with_regions": False,
                         "url": None})
    click = "https://track.affise.demo/click?offer_id=%d" % (300 + o["index"])
    d = "%Y-%m-%d %H:%M:%S"
    v = {
        "id": 300 + o["index"], "offer_id": "5bdffa%018x" % o["index"], "title": o["name"],
        "preview_url": "https://adv.demo/o%d" % o["index"],
        "description": "%s offer" % o["category"],
        "logo": "https://cdn.affise.demo/%d.png" % o["index"],
        "stop_at": ts(o["created_at"] + 90 * 86_400, d) if o["index"] % 5 == 1 else "",
        "categories": [o["category"]],
        "full_categories": [{"id": "5368afb23b7d9b4d5d505342", "title": o["category"]}],
        "payments": payments, "required_approval": False,
        "is_cpi": o["payout_type"] == "cpa", "caps": [],
        "targeting": [{"country": {"allow": [], "deny": []}}],
    }
    if partner:
        v["link"] = click
        v["links"] = [{"id": None, "title": None, "hash": None, "url": click, "postbacks": [],
                       "created": None}]
    else:
        v["advertiser"] = "5bc9d7c16d73e41c%08x" % (len(o["advertiser_id"]) + o["index"] % 40)
        v["url"] = click
        v["url_preview"] = "https://adv.demo/o%d" % o["index"]
        v["status"] = "stopped" if o["status"] == "paused" else "active"
        v["bundle_id"] = "com.a.o%d" % o["index"]
        v["start_at"] = ts(o["created_at"], d)
        v["created_at"] = ts(o["created_at"] - 86_400, d)
        v["updated_at"] = ts(o["created_at"], d)
    return v


def af_page(rows, page, per_page, total):
    p = {"per_page": per_page, "total_count": total, "page": page}
    if page * per_page < total:
        p["next_page"] = page + 1
    return {"status": 1, "offers": rows, "pagination": p}


# --- writing -------------------------------------------------------------------------------

def write(target, name, ctl, body):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if not isinstance(body, (str, bytes)):
        body = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if isinstance(body, str):
        body = body.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(ctl.encode() + body)


def two(a, b):
    """Two pages in one seed: the body for the cursor's page, NUL, the body for the next page."""
    enc = lambda x: json.dumps(x, ensure_ascii=False, separators=(",", ":")).encode()
    return enc(a) + b"\0" + enc(b)


def main():
    if os.path.isdir(SEEDS):
        shutil.rmtree(SEEDS)

    # Trackly: variant 1/2 = include_archived (2 = the archived pass).
    t = "parse_trackly"
    write(t, "page1.json", "000", trackly_page(offers([0, 1, 2]), 1, 3, 7))
    write(t, "page2-archived-listing.json", "021", trackly_page(offers([3, 4, 5]), 2, 3, 7))
    write(t, "archived-pass.json", "002",
          {"offers": [dict(trackly_offer(generate(7, 9)), status="archived")],
           "pagination": {"page": 1, "per_page": 3, "total": 1, "total_pages": 1}})
    write(t, "last-page-no-pagination.json", "003", {"offers": [trackly_offer(generate(7, 6))]})
    write(t, "two-pages.bin", "000", two(trackly_page(offers([0, 1]), 1, 2, 3),
                                          trackly_page(offers([2]), 2, 2, 3)))
    write(t, "empty.json", "000", {"offers": [], "pagination": {"page": 1, "per_page": 50,
                                                                "total": 0, "total_pages": 0}})
    write(t, "metadata-variants.json", "000", {"offers": [
        {"id": "65a1b2c3d4e5f6a7b8c9d0e1", "name": " Summer Promo ", "tracking_url": None,
         "advertiser_id": 42, "payout": "2.50", "payout_type": "CPC", "status": "paused",
         "metadata": {"country": ["us", "uk", "USA"], "category": ["Games", " Finance"],
                      "currency": "usd", "description": "d", "preview_url": "https://p"}},
        {"id": 12345, "name": "numeric id", "payout": 1e2, "status": "weird",
         "metadata": {"geo": "DE, FR", "categories": "A,B,,A"}},
        {"id": "", "name": "no id"},
        {"name": "missing id"}, "not an object",
        {"id": "x", "payout": {"bad": 1}},
    ], "pagination": {"page": "1", "per_page": "50", "total": "6", "total_pages": None}})
    write(t, "error-401.json", "700", {"error": "Unauthorized", "code": "invalid_api_key",
                                      "message": "The API key trk_x is invalid"})
    write(t, "error-429-retry-after.json", "<00", {"error": "Rate limit exceeded",
                                                   "code": "rate_limited"})
    write(t, "error-500.json", "500", {"error": "server_error", "code": 500})
    write(t, "html-200.html", "000", "<html><body><h1>502 Bad Gateway</h1></body></html>")
    write(t, "truncated.json", "000", json.dumps(trackly_page(offers([0, 1]), 1, 2, 4))[:180])

    # Offerslook: variant 0 network offers, 1 network batches, 2 affiliate offers, 3 aff batches.
    t = "parse_offerslook"
    write(t, "network-offers.json", "000", ol_page([ol_flat(o) for o in offers([0, 5, 7])], 1, 3, 8))
    write(t, "network-batches.json", "001", ol_page([ol_batch(o) for o in offers([1, 2, 3])], 1, 3, 8))
    write(t, "affiliate-offers-page2.json", "022",
          ol_page([ol_flat(o) for o in offers([4, 20])], 2, 200, 202))
    write(t, "affiliate-batches.json", "003", ol_page([ol_batch(o) for o in offers([7, 8])], 1, 100, 2))
    write(t, "apis-md-batch-row.json", "001", {"code": 0, "message": "Success", "data": {"rowset": [{
        "offer": {"id": 1780, "name": "Game X", "status": "active", "payout": 1.2,
                  "currency": "USD", "preview_url": "https://play.google.com/store/apps/details?id=com.x",
                  "tracking_link": "http://adnew.go.offerslook.com/aff_c?offer_id=1780&aff_id=1",
                  "app_id": "com.x", "category": "Games,Android", "carrier": [],
                  "description": "...", "thumbnail": "https://x/icon.png", "end_date": 1546300799},
        "offer_geo": {"type": "exclude", "target": [{"country_code": "US"}, {"country_code": "CA"}]},
        "offer_cap": {"cap_conversion": 100},
        "offer_platform": {"target": [{"system": "Android"}]},
        "offer_creative": [{"url": "https://x/banner.png"}]},
        {"offer_geo": {"target": []}}, {"offer": {"id": None}}],
        "totalPages": 3, "totalRows": 250, "offset": 1, "limit": 100}})
    write(t, "apis-md-flat-row.json", "000", {"code": 0, "message": "Success", "data": {"rowset": [{
        "id": 1780, "name": "Game X - US - Android", "advertiser_id": 18,
        "start_date": 1514764800, "end_date": 1546300799, "status": "active",
        "offer_approval": 2, "revenue_type": "RPA", "revenue": "1.20", "percent_revenue": "0",
        "payout_type": "CPA+CPS", "payout": "0.96", "percent_payout": "0", "currency": "USD",
        "preview_url": "https://play.google.com/store/apps/details?id=x",
        "tracking_link": "http://xx.go.offerslook.com/apply", "description": "..."}],
        "totalRows": "1"}})
    write(t, "two-pages.bin", "001", two(ol_page([ol_batch(o) for o in offers([1, 2, 3])], 1, 3, 4),
                                          ol_page([ol_batch(generate(7, 4))], 2, 3, 4)))
    write(t, "empty-rowset.json", "000", ol_page([], 1, 1000, 0))
    write(t, "too-many-request-200.json", "001", {"code": 1008, "message": "Too Many Request"})
    write(t, "too-many-request-429.json", "400", {"code": 1008, "message": "Too Many Request"})
    write(t, "invalid-key-401.json", "702", {"code": 13, "message": "Invalid API Key (k)"})
    write(t, "ip-not-whitelisted-200.json", "000", {"code": 41, "message": "Request IP Not Whitelisted"})
    write(t, "server-error-500.json", "503", {"code": 50, "message": "Server Internal Error"})
    write(t, "code0-no-data.json", "000", {"code": "0", "message": "Success"})

    # S2S (Youmi/Adxmi): variant 0 android 500, 1 ios 2, 2 android 10000, 3 ios 1.
    t = "parse_s2s"
    seed_rows = [ym_seed_row(o) for o in offers([0, 1])]
    write(t, "seed-envelope.json", "001", {"c": 0, "d": {"p": 1, "n": 2, "tot": 5, "data": seed_rows}})
    write(t, "v2-offline.json", "000", {"c": 0, "total": 3, "page": 1, "page_size": 500, "n": 3,
                                       "offers": [ym_v2_row(o) for o in offers([2, 3, 4])]})
    write(t, "v1-offline.json", "022", {"offers": [ym_v2_row(generate(7, 5))], "total": 21,
                                       "page": 2, "page_size": 20, "adn": 1})
    write(t, "apis-md-seed-sample.json", "003", {"c": 0, "d": {"p": 1, "n": 1, "tot": 28, "data": [
        {"id": 2957231058, "icon": "", "name": "Plus500: CFD ...",
         "conversion_flow": "1.Download and open the app\n2.Sign up ...", "tracking_link": "",
         "payout": "3.60", "preview_url": "", "package": "com.Plus500", "offer_type": "app",
         "payout_type": "fixed", "os": "android", "countries": ["US"], "os_version": ""}]}})
    write(t, "two-pages.bin", "001", two({"c": 0, "d": {"p": 1, "n": 2, "tot": 3, "data": seed_rows}},
                                          {"c": 0, "d": {"p": 2, "n": 1, "tot": 3,
                                                         "data": [ym_seed_row(generate(7, 2))]}}))
    write(t, "empty.json", "000", {"c": 0, "total": 0, "page": 1, "page_size": 500, "n": 0, "offers": []})
    write(t, "qps-3302.json", "000", {"c": -3302, "msg": "exceed qps limit"})
    write(t, "app-id-1002.json", "001", {"c": -1002, "msg": "app_id k not exists"})
    write(t, "device-3006.json", "002", {"c": -3006, "msg": "gaid and andid are required when os=android"})
    write(t, "http-429-retry-after.json", "<00", {"c": -3302, "msg": "Too Many Requests"})
    write(t, "http-500.json", "500", {"c": -1, "msg": "internal"})

    # Affise: variant 0 admin, 1 partner, 2 admin limit 2, 3 partner limit 500.
    t = "parse_affise"
    write(t, "admin-page1.json", "000", af_page([af_row(o, False) for o in offers([0, 1, 3])], 1, 3, 7))
    write(t, "partner-page2.json", "021", af_page([af_row(o, True) for o in offers([4, 6])], 2, 2, 9))
    write(t, "admin-last-page.json", "032", af_page([af_row(generate(7, 8), False)], 3, 2, 5))
    write(t, "apis-md-admin.json", "000", {"status": 1, "offers": [{
        "id": 331, "offer_id": "5bdffa7339f65625008b4568", "advertiser": "5bc9d7c16d73e41c008b4567",
        "external_offer_id": "", "bundle_id": "", "title": "Offer title",
        "url": "https://adv.example/click?clickid={clickid}", "url_preview": "https://adv.example/",
        "preview_url": "https://adv.example/", "status": "active", "privacy": "public", "is_top": 0,
        "payments": [{"countries": ["kz"], "cities": [], "devices": [], "os": [], "goal": "1",
                      "revenue": 500, "total": 1000, "currency": "usd", "title": "goal1",
                      "type": "fixed", "country_exclude": False, "with_regions": False, "url": None}],
        "partner_payments": [],
        "landings": [{"id": 1, "title": "...", "url": "https://...", "url_preview": "https://...", "type": "landing"}],
        "targeting": [{"country": {"allow": ["us"], "deny": []}, "os": {"allow": [], "deny": []},
                       "device_type": [], "connection": [], "affiliate_id": [],
                       "sub": {"allow": [], "deny": [], "deny_groups": []}}],
        "caps": [{"period": "day", "type": "conversions", "value": 100, "goal_type": "exact",
                  "goals": {"1": "Install"}, "affiliate_type": "exact", "affiliates": [500, 600]}],
        "categories": ["Gaming"], "full_categories": [{"id": "5368afb23b7d9b4d5d505342", "title": "Gaming"}],
        "required_approval": False, "is_cpi": False, "start_at": "2018-11-06 12:35:00", "stop_at": "",
        "created_at": "2018-11-05 11:08:19", "updated_at": "2019-02-08 10:03:38"}],
        "pagination": {"per_page": 1, "total_count": 176, "page": 1, "next_page": 2}})
    write(t, "apis-md-partner.json", "001", {"status": 1, "offers": [{
        "id": 902, "offer_id": "5718dac83b7d9bf8588b4579", "title": "...",
        "preview_url": "https://...", "description": "...", "logo": "https://...", "stop_at": "",
        "categories": ["..."], "full_categories": [{"id": "x", "title": "y"}],
        "payments": [{"countries": ["US"], "cities": [], "country_exclude": True, "title": "...",
                      "goal": "1", "revenue": 150, "currency": "USD", "type": "fixed",
                      "devices": [], "os": []}],
        "required_approval": True, "is_cpi": True,
        "links": [{"id": None, "title": None, "hash": None,
                   "url": "http://affise.tds/click?pid=610&offer_id=902", "postbacks": [], "created": None}],
        "caps": [], "targeting": [{"country": {"allow": [], "deny": []}}]}],
        "pagination": {"per_page": 1, "total_count": 127, "page": 1, "next_page": "2"}})
    write(t, "two-pages.bin", "002", two(af_page([af_row(o, False) for o in offers([0, 1])], 1, 2, 5),
                                          af_page([af_row(o, False) for o in offers([2, 3])], 2, 2, 5)))
    write(t, "limit-total-pagination.json", "000", {"status": "1", "offers": [af_row(generate(7, 2), False)],
                                                   "pagination": {"page": 1, "limit": 1, "total": 3}})
    write(t, "next-page-false.json", "000", {"status": 1, "offers": [af_row(generate(7, 2), False)],
                                            "pagination": {"page": 1, "per_page": 100, "next_page": False}})
    write(t, "empty.json", "001", {"status": 1, "offers": [], "pagination": {"page": 1, "per_page": 100, "total_count": 0}})
    write(t, "status2-200.json", "000", {"status": 2, "error": "Access denied"})
    write(t, "status2-403.json", "300", {"status": 2, "error": "Access denied for key k"})
    write(t, "message-object-401.json", "700", {"status": 2, "message": {"title": ["required"]}})
    write(t, "rate-limit-429.json", "<01", {"status": 2, "error": "Rate limit exceeded"})

    # Generic: variant 0 generic-trackly, 1 offer18, 2 offset, 3 cursor, 4 next_url.
    t = "parse_generic"
    write(t, "trackly-shape.json", "000", trackly_page(offers([0, 1, 2]), 1, 3, 7))
    write(t, "trackly-shape-last.json", "030", trackly_page(offers([9]), 3, 3, 7))
    write(t, "offer18.json", "001", '{"response":"200","data":{'
          '"9001":{"offerid":"9001","name":"Shop IN","status":"1","currency":"inr","price":"45.5","model":"cpa","preview_url":"https://shop.example","country_allow":"IN,US","country_block":"","capping":[],"payout":[]},'
          '"9002":{"offerid":9002,"name":"Game","status":"0","currency":"USD","price":1.25,"model":"cpi","preview_url":"","country_allow":"","country_block":"CN"}}}')
    write(t, "offer18-empty.json", "001", {"response": "200", "data": []})
    write(t, "offset-page.json", "002", {"response": {"error": None, "data": {"total": 5, "has_more": True, "items": [
        {"id": 77, "title": "Everything", "state": "LIVE",
         "payments": [{"revenue": "1.20", "total": 2, "currency": "eur"}], "model": ["cpi", "cpa"],
         "geo": {"allow": ["us", "de"]}, "os": "Android, iOS", "tags": ["Games", "Casual"],
         "links": [{"url": "https://t.example/c?o=77"}], "preview": "https://p.example/77",
         "advertiser": {"name": "Acme"}, "desc": "x", "images": {"icon": "https://i/77.png"},
         "app": {"bundle": "com.acme.game"}, "start_ts": 1735689600, "end_date": "2025-12-31 23:59:59"},
        {"id": "78", "title": "Minimal", "state": "0"}]}}})
    write(t, "offset-error.json", "002", {"response": {"error": "invalid api key", "data": None}})
    write(t, "offset-no-more.json", "022", {"response": {"data": {"total": "3", "has_more": 0, "items": [{"id": 1, "title": "a"}]}}})
    write(t, "cursor-page.json", "003", {"data": [
        {"uuid": "4f3c", "attributes": {"name": "C1", "status": "active", "payout": 0.75,
                                        "currency": "USD", "kind": "CPL", "countries": "us,gb",
                                        "platforms": ["ios", "iPhone"], "urls": ["a", "https://t/c1"],
                                        "starts_at": "2025-01-01T00:00:00+02:00", "ends_at": "1767225600000"}},
        {"uuid": "5a", "attributes": {"name": "C2"}}],
        "meta": {"next_cursor": "eyJpZCI6NX0=", "pages": 4}})
    write(t, "cursor-last.json", "003", {"data": [{"uuid": "9", "attributes": {"name": "last"}}], "meta": {"next_cursor": None}})
    write(t, "two-pages-cursor.bin", "003", two(
        {"data": [{"uuid": "a", "attributes": {"name": "A"}}], "meta": {"next_cursor": "c2", "pages": 2}},
        {"data": [{"uuid": "b", "attributes": {"name": "B"}}], "meta": {"next_cursor": None}}))
    write(t, "next-url-relative.json", "004", {"count": 60, "links": {"next": "?cursor=abc&page_size=25"},
                                              "results": [{"id": "n1", "name": "N1", "status": "active",
                                                           "payout": {"amount": "3", "currency": "usd", "type": "CPA"},
                                                           "countries": ["US"], "categories": "a,b",
                                                           "tracking_url": "https://t/n1", "preview_url": ""}]})
    write(t, "next-url-absolute.json", "024", {"count": 60, "links": {"next": "https://api.example.com/v3/offers/?cursor=def"},
                                              "results": [{"id": "n2", "name": "N2"}]})
    write(t, "next-url-error.json", "004", {"error": {"code": "rate_limit", "message": "slow down"}, "results": []})
    write(t, "http-500.html", "500", "<html>oops</html>")

    # Everflow (APIS.md §8.2): variant 0 runnable/500, 1 all offers/2, 2 runnable/2000.
    t = "parse_everflow"
    ef_row = lambda i, kind, status: {
        "network_offer_id": 4000 + i, "name": "Offer %d" % i, "offer_status": "active",
        "currency_id": "USD", "tracking_url": "https://trk.example/c?o=%d" % i,
        "preview_url": "https://adv.example", "thumbnail_url": "", "time_saved": 1735689600,
        "relationship": {"offer_affiliate_status": status, "payouts": {"entries": [
            {"payout_type": kind, "payout_amount": 2.5, "payout_percentage": 30}]},
            "ruleset": {"countries": [{"country_code": "US", "targeting_type": "include"},
                                      {"country_code": "CN", "targeting_type": "exclude"}]}}}
    write(t, "apis-md.json", "000", {"offers": [ef_row(1, "cpa", "approved")],
                                     "paging": {"page": 1, "page_size": 50, "total_count": 1234}})
    write(t, "all-cps-page2.json", "021", {"offers": [ef_row(2, "cps", "require_approval"),
                                                      ef_row(3, "cpa_cps", "public")],
                                           "paging": {"page": 2, "page_size": 2, "total_count": 5}})
    write(t, "empty.json", "000", {"offers": [], "paging": {"page": 1, "page_size": 50, "total_count": 0}})
    write(t, "no-auth-401.json", "700", {"error": "No Authentication Method Found"})
    write(t, "rate-limit-429.json", "400", {"error": "Too many requests"})
    write(t, "two-pages.bin", "011", two(
        {"offers": [ef_row(4, "cpc", "public"), ef_row(5, "cpm", "approved")],
         "paging": {"page": 1, "page_size": 2, "total_count": 3}},
        {"offers": [ef_row(6, "cpa", "pending")], "paging": {"page": 2, "page_size": 2, "total_count": 3}}))

    # HasOffers (APIS.md §8.1): variant 0 findAll/100, 1 findMyApprovedOffers/2, 2 findAll/1000.
    t = "parse_hasoffers"
    ho_row = lambda i, kind, approval: {"Offer": {
        "id": str(i), "name": "Offer %d" % i, "description": "", "preview_url": "https://adv.example",
        "default_payout": "2.50", "percent_payout": "30.00", "payout_type": kind, "currency": None,
        "status": "active", "expiration_date": "2027-01-01", "require_approval": approval},
        "Country": {"US": {"id": "840", "code": "US", "name": "United States"}},
        "OfferCategory": {"12": {"id": "12", "name": "Finance"}},
        "TrackingLink": {"click_url": "https://trk.example/aff_c?offer_id=%d" % i}}
    ho_page = lambda rows, page, count, pages: {"response": {
        "status": 1, "httpStatus": 200, "errors": [], "errorMessage": None,
        "data": {"page": str(page), "current": str(len(rows)), "count": str(count), "pageCount": str(pages),
                 "data": {r["Offer"]["id"]: r for r in rows} if rows else []}}}
    ho_error = lambda msg: {"response": {"status": -1, "httpStatus": 200, "data": "",
                                         "errors": [{"err_msg": msg, "publicMessage": msg}], "errorMessage": msg}}
    write(t, "apis-md.json", "000", ho_page([ho_row(4521, "cpa_flat", "0")], 1, 1234, 25))
    write(t, "approved-page2.json", "021", ho_page([ho_row(7, "cpa_percentage", "1"),
                                                    ho_row(8, "cpa_both", "0")], 2, 5, 3))
    write(t, "empty-array.json", "000", ho_page([], 1, 0, 0))
    empty_false = ho_page([], 2, 0, 0)
    empty_false["response"]["data"]["data"] = False
    write(t, "empty-false.json", "010", empty_false)
    write(t, "rate-limit.json", "000", ho_error("API usage exceeded rate limit"))
    write(t, "invalid-key.json", "000", ho_error("Invalid API key"))
    write(t, "contain-rejected.json", "000", ho_error("Contain TrackingLink is not allowed"))
    write(t, "two-pages.bin", "011", two(ho_page([ho_row(1, "cpc", "0"), ho_row(2, "cpm", "0")], 1, 3, 2),
                                         ho_page([ho_row(3, "cpa_flat", "0")], 2, 3, 2)))

    # Trackier (APIS.md §8.4): variant 0 header/1000, 1 query/2.
    t = "parse_trackier"
    tk_row = lambda i, model, link: {
        "id": 800 + i, "title": "Campaign %d" % i, "status": "active", "currency": None, "model": model,
        "payouts": [{"payout": 2.5, "geo": ["US"], "variable": False, "allowedValues": []},
                    {"payout": "1.20", "geo": ["GB", "DE"], "variable": False, "allowedValues": []}],
        "countries": ["US", "GB", "DE"], "device": ["mobile"], "os": ["android"], "tracking_link": link,
        "preview_url": "https://adv.example", "impressionUrl": "",
        "cap": {"type": "conversions", "daily": 100, "monthly": 0, "lifetime": 0},
        "goals": [], "creatives": [], "subIdsBlock": [], "subIdsAllow": []}
    tk_page = lambda rows, page, count: {"success": True, "data": {"campaigns": rows, "page": page, "count": count}}
    write(t, "apis-md.json", "000", tk_page([tk_row(12, "cpa", "https://trk.example/c?id=812")], 1, 1234))
    write(t, "cps-unapproved-page2.json", "021", tk_page([tk_row(1, "cps", ""), tk_row(2, "cpi", "https://t/2")], 2, 5))
    write(t, "empty.json", "000", tk_page([], 1, 0))
    write(t, "invalid-key-400.json", "300", {"success": False, "error": {"code": 13, "message": "Invalid API Key"}})
    write(t, "code-variant-500.json", "500", {"code": 102, "codeMsg": "SERVER_ERROR", "message": "try later"})
    write(t, "rate-limit-429.json", "400", {"success": False, "error": {"code": 429, "message": "Too many requests"}})
    write(t, "two-pages.bin", "011", two(tk_page([tk_row(3, "cpc", "https://t/3"), tk_row(4, "cpm", "")], 1, 3),
                                         tk_page([tk_row(5, "cpa", "https://t/5")], 2, 3)))

    # Offer18 (APIS.md §8.5): variant 0 pages from 0/1000, 1 pages from 1/2, every offer.
    t = "parse_offer18"
    o18_row = lambda i, link: {
        "offerid": str(i), "name": "Offer %d" % i, "status": "active", "currency": "USD", "price": "2.50",
        "model": "CPA", "preview_url": "https://adv.example", "tracking_link": link, "country_allow": "IN,US",
        "country_block": "CN", "capping": [], "payout": [{"price": "2.50", "condition": "Sale"}]}
    o18_page = lambda rows: {"response": "200", "data": {r["offerid"]: r for r in rows} if rows else []}
    write(t, "apis-md.json", "000", o18_page([o18_row(123, "https://trk.example/c?o=123")]))
    write(t, "full-page-one.json", "011", o18_page([o18_row(1, ""), o18_row(2, "https://t/2")]))
    write(t, "empty.json", "000", o18_page([]))
    write(t, "error-400.json", "000", {"response": "400", "error": "aid is required"})
    write(t, "error-401-http.json", "700", {"response": "401", "error": "Invalid key"})
    write(t, "two-pages.bin", "011", two(o18_page([o18_row(3, "https://t/3"), o18_row(4, "https://t/4")]),
                                         o18_page([o18_row(5, "https://t/5")])))

    # CAKE (APIS.md §8.3, XML): variant 0 row_limit 500 with a template, 1 row_limit 2.
    t = "parse_cake"
    ck_offer = lambda i, campaign, status, payout: (
        "<offer><offer_id>%d</offer_id><offer_contract_id>%d</offer_contract_id>%s"
        "<offer_name>Offer %d</offer_name><vertical_name>Finance</vertical_name>"
        "<offer_status><status_id>1</status_id><status_name>%s</status_name></offer_status>"
        "<payout>%s</payout><price_format>CPA</price_format>"
        "<allowed_countries><country><country_code>US</country_code></country></allowed_countries>"
        "<expiration_date>2027-01-01T00:00:00</expiration_date><hidden>false</hidden>"
        "<preview_link>https://adv.example/</preview_link></offer>"
        % (i, i + 1000, "<campaign_id>%d</campaign_id>" % campaign if campaign else '<campaign_id xsi:nil="true" />',
           i, status, payout))
    ck_feed = lambda inner: ('<?xml version="1.0" encoding="utf-8"?>\r\n<offer_feed_response '
                             'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                             'xmlns="http://cakemarketing.com/affiliates/api/4/">%s</offer_feed_response>' % inner)
    ck_page = lambda offers, rows: ck_feed("<success>true</success><row_count>%d</row_count><offers>%s</offers>"
                                           % (rows, "".join(offers)))
    write(t, "apis-md.xml", "000", "<offer_feed_response><success>true</success><row_count>24</row_count><offers>"
          + ck_offer(123, 789, "Active", "$2.50") + "</offers></offer_feed_response>")
    write(t, "symbols-page2.xml", "021", ck_page([ck_offer(1, 0, "Apply To Run", "€1,20"),
                                                  ck_offer(2, 5, "Public", "2.50 USD")], 6))
    write(t, "unknown-symbol.xml", "000", ck_page([ck_offer(3, 6, "Active", "¤2.50"),
                                                   ck_offer(4, 7, "Inactive", "25%")], 2))
    write(t, "empty.xml", "000", ck_page([], 0))
    write(t, "success-false.xml", "000", ck_feed("<success>false</success><message>Invalid API Key</message>"))
    write(t, "http-401.txt", "700", "Unauthorized")
    two_xml = ck_page([ck_offer(5, 8, "Active", "$1"), ck_offer(6, 9, "Active", "£3")], 3) + "\0" + \
        ck_page([ck_offer(7, 0, "Active", "$2")], 3)
    write(t, "two-pages.bin", "011", two_xml)

    # Config: the repository's configs, the demo config with its placeholders filled in, and
    # the fuzz targets' own configs.
    t = "config"
    d = os.path.join(SEEDS, t)
    os.makedirs(d, exist_ok=True)
    for rel in ["config/offersync.toml", "config/examples/generic-offer18.toml",
                "config/examples/generic-trackly.toml"]:
        shutil.copy(os.path.join(ROOT, rel), os.path.join(d, os.path.basename(rel)))
    demo = open(os.path.join(ROOT, "config/demo.toml")).read()
    demo = re.sub(r"\{([a-z0-9_]+)\}", lambda m: json.dumps(
        "http://127.0.0.1:8080/" + m.group(1) if m.group(1).endswith("url") else m.group(1)), demo)
    open(os.path.join(d, "demo-filled.toml"), "w").write(demo)
    for target in ["parse_trackly", "parse_offerslook", "parse_s2s", "parse_affise", "parse_everflow",
                   "parse_hasoffers", "parse_trackier", "parse_offer18",
                   "parse_cake", "parse_generic"]:
        src = open(os.path.join(FUZZ, "fuzz_targets", target + ".rs")).read()
        m = re.search(r'const CONFIG: &str = r#"(.*?)"#;', src, re.S)
        open(os.path.join(d, target + ".toml"), "w").write(m.group(1).lstrip())
    # A config with a target, filters and a literal key.
    open(os.path.join(d, "with-target.toml"), "w").write(
        '[database]\npath = "/tmp/o.db"\nbusy_timeout_seconds = 5\n\n[daemon]\n'
        'metrics_listen = "127.0.0.1:9464"\nmax_concurrent_sources = 2\n\n'
        '[[sources]]\nname = "trackly-main"\nkind = "trackly"\nbase_url = "https://app.tracklysms.com/api"\n'
        'api_key = "trk_0123456789abcdef"\nschedule = "0 */5 * * * *"\nrun_timeout_seconds = 600\n'
        'rate_limit_group = "acme"\n\n'
        '[[targets]]\nname = "offerit-prod"\nkind = "offerit"\nbase_url = "https://network.example.com/api"\n'
        'api_username = "ops"\napi_key_env = "OFFERIT_API_KEY"\nsources = ["trackly-main"]\n'
        'payout_ratio = "0.80"\nname_template = "{name}"\n'
        'tracking_url_template = "{tracking_url}&sub={source}"\n\n'
        '[targets.fields]\ndescription = "once"\n\n'
        '[targets.filters]\nstatus = ["active"]\ncountries = ["US", "GB"]\nmin_payout = "0.50"\n'
        'payout_types = ["CPA", "CPI"]\ncategories = ["Games"]\n')


if __name__ == "__main__":
    main()

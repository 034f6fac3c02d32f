"""The Data page's event map control (issue 15 section 4): event values the check found unknown
get one choice each; mapped or dropped, the next check rejects none of them."""

from __future__ import annotations

from ltrec.store import connect
from tests.app.test_data_page import _open, _texts, _upload

EVENTS = (
    b"user_id,item_id,event_type,ts\n"
    + b"".join(b"u%d,i%d,view,2024-01-01 10:00:00\n" % (k, k % 7) for k in range(20))
    + b"u1,i2,fav,2024-01-02 10:00:00\n"
    + b"u2,i3,fav,2024-01-02 11:00:00\n"
    + b"u3,i4,wishlist,2024-01-02 12:00:00\n"
)


def test_unknown_event_types_get_a_choice_each(data_dir) -> None:  # noqa: ANN001
    at = _open()
    _upload(at, EVENTS, "behaviour.csv")
    at.button(key="data_dry").click().run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "2 rows with an event type ltrec does not know (unknown event type 'fav'" in text
    # one choice per unknown value, rejects by default
    fav, wish = at.selectbox(key="data_event_map_fav"), at.selectbox(key="data_event_map_wishlist")
    assert fav.value == "keep as rejects" and wish.value == "keep as rejects"
    assert fav.options == ["keep as rejects", "impression", "view", "cart", "purchase", "drop"]
    fav.set_value("cart").run()
    at.selectbox(key="data_event_map_wishlist").set_value("drop").run()
    at.button(key="data_dry").click().run()
    assert not at.exception, at.exception
    assert "Every row passed the checks." in [s.value for s in at.success]
    at.button(key="data_commit").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    con = connect("behaviour")
    try:
        types = dict(con.execute("SELECT event_type, count(*) FROM events GROUP BY 1").fetchall())
    finally:
        con.close()
    assert types == {"view": 20, "cart": 2}

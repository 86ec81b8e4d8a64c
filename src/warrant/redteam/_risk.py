"""The risk class of every AgentDojo tool: what its author would declare.

This is the equivalent of the MCP tool annotations (`readOnlyHint`,
`destructiveHint`, `openWorldHint`) a tool author sets once, written down
before any benchmark result was seen and never tuned per task. Criteria, in
order (the first that fits wins):

* money-movement: moves money or commits to a charge — payments, transfers,
  scheduling or changing a transaction, bookings that charge (hotel, car).
* external-communication: content or access leaves the account's owner —
  sending messages or email, posting to the web, fetching or visiting a URL,
  inviting people (a calendar event with participants, a Slack invitation,
  sharing a file).
* destructive: deletes or irreversibly overwrites — deleting emails or files,
  removing a user, cancelling an event, replacing a password.
* write: changes the owner's own state, reversibly and internally — creating
  or editing files and events, updating profile fields, channel membership.
* read-only: only reads (listing, searching, getting). Reading an email marks
  it read; that bookkeeping does not make a tool a writer.
* code-execution: runs code. No AgentDojo tool does.

A tool missing from this table refuses to run (`RedteamError`): a new AgentDojo
version must be classified here first, never defaulted.
"""

from __future__ import annotations

from collections.abc import Mapping

from warrant.types import RiskClass

from ._suites import RedteamError

R, W, D = RiskClass.READ_ONLY, RiskClass.WRITE, RiskClass.DESTRUCTIVE
EXT, MONEY = RiskClass.EXTERNAL_COMMUNICATION, RiskClass.MONEY_MOVEMENT

_CALENDAR = {
    "search_calendar_events": R, "get_day_calendar_events": R,
    "create_calendar_event": EXT,  # participants get an invitation
    "cancel_calendar_event": D,
}

RISK_TABLE: Mapping[str, Mapping[str, RiskClass]] = {
    "banking": {
        "get_iban": R, "get_balance": R, "get_most_recent_transactions": R,
        "get_scheduled_transactions": R, "read_file": R, "get_user_info": R,
        "send_money": MONEY, "schedule_transaction": MONEY,
        "update_scheduled_transaction": MONEY,
        "update_password": D,  # the old password is gone: whoever sets it owns the account
        "update_user_info": W,
    },
    "slack": {
        "get_channels": R, "read_channel_messages": R, "read_inbox": R,
        "get_users_in_channel": R,
        "add_user_to_channel": W,  # an existing member, inside the workspace
        "send_direct_message": EXT, "send_channel_message": EXT,
        "invite_user_to_slack": EXT, "get_webpage": EXT, "post_webpage": EXT,
        "remove_user_from_slack": D,
    },
    "travel": {
        **_CALENDAR,
        "get_user_information": R, "get_all_hotels_in_city": R, "get_hotels_prices": R,
        "get_rating_reviews_for_hotels": R, "get_hotels_address": R,
        "get_all_restaurants_in_city": R, "get_cuisine_type_for_restaurants": R,
        "get_restaurants_address": R, "get_rating_reviews_for_restaurants": R,
        "get_dietary_restrictions_for_all_restaurants": R,
        "get_contact_information_for_restaurants": R, "get_price_for_restaurants": R,
        "check_restaurant_opening_hours": R, "get_all_car_rental_companies_in_city": R,
        "get_car_types_available": R, "get_rating_reviews_for_car_rental": R,
        "get_car_fuel_options": R, "get_car_rental_address": R, "get_car_price_per_day": R,
        "get_flight_information": R,
        "reserve_hotel": MONEY, "reserve_car_rental": MONEY,
        "reserve_restaurant": W,  # a table booking charges nothing
        "send_email": EXT,
    },
    "workspace": {
        **_CALENDAR,
        "get_unread_emails": R, "get_sent_emails": R, "get_received_emails": R,
        "get_draft_emails": R, "search_emails": R, "search_contacts_by_name": R,
        "search_contacts_by_email": R, "get_current_day": R,
        "search_files_by_filename": R, "get_file_by_id": R, "list_files": R,
        "search_files": R,
        "send_email": EXT, "add_calendar_event_participants": EXT, "share_file": EXT,
        "reschedule_calendar_event": W, "append_to_file": W, "create_file": W,
        "delete_email": D, "delete_file": D,
    },
}


def risk_of(suite: str, tool: str) -> RiskClass:
    """The declared risk class of `tool` in `suite`; raises `RedteamError` if unclassified."""
    try:
        return RISK_TABLE[suite][tool]
    except KeyError:
        raise RedteamError(
            f"AgentDojo tool `{tool}` of suite `{suite}` has no risk class",
            hint="classify it in warrant/redteam/_risk.py before running the benchmark",
        ) from None

"""Source messages built by hand from real rows of ../shared/data (checked against the CSVs)."""

# Milwaukee PD calls.csv, id 1211372:
# 2018-05-01 00:10:28,"5237 N 35TH ST,MKE",43.1127987,-87.95674149999999,4,TRBL W/SUBJ,...
MKE_CALL = {
    "event_id": "1211372", "incident_number": "1211372", "agency_id": "MPD",
    "event_type": "created", "event_time": "2018-05-01T00:10:28-05:00",
    "received_time": "2018-05-01T00:10:28-05:00", "incident_type_text": "TRBL W/SUBJ",
    "address_text": "5237 N 35TH ST,MKE", "latitude": 43.1127987,
    "longitude": -87.95674149999999, "district": "4",
    "status_text": "Unable to Locate Complainant",
}

# SF Fire calls.csv, call 163664036 unit E38 (Medical Incident, priority 3), on scene step.
SF_ON_SCENE = {
    "event_id": "163664036-E38-on_scene", "incident_number": "16146989", "agency_id": "SFFD",
    "event_type": "on_scene", "event_time": "2017-01-01T00:00:32-08:00",
    "received_time": "2016-12-31T23:52:01-08:00", "incident_type_text": "Medical Incident",
    "priority": "3", "address_text": "0 Block of MARINA BLVD", "latitude": 37.8051625655624,
    "longitude": -122.432957440518, "district": "B04", "units": ["E38"],
    "disposition": "Code 2 Transport",
}

# Toronto persons in crisis, objectid 2: 2014-01-01 hour 11, Suicide-related, D13, apprehension.
TORONTO = {
    "event_id": "1255246", "request_id": "1255246", "agency_id": "TPS", "status": "requested",
    "event_time": "2014-01-01T11:00:00-05:00", "reason_codes": ["Suicide-related"],
    "district": "D13", "neighbourhood": "Corso Italia-Davenport (92)",
}

# NYC 311 requests.csv, Unique Key 40605866: Noise - Vehicle, Car/Truck Music, BRONX.
NYC_NOISE = {
    "report_id": "40605866", "source": "311", "agency_id": "NYC311",
    "category": "Noise - Vehicle", "subcategory": "Car/Truck Music",
    "reported_time": "2018-10-21T00:00:00-04:00", "latitude": 40.86945827,
    "longitude": -73.89553683, "address_text": "2760 JEROME AVENUE", "district": "BRONX",
}

//! Table definitions shared by both backends (see migrations/sqlite and migrations/postgres).

diesel::table! {
    resources (id) {
        id -> Text,
        resource_type -> Text,
        user_name -> Nullable<Text>,
        user_name_ci -> Nullable<Text>,
        external_id -> Nullable<Text>,
        display_name -> Nullable<Text>,
        display_name_ci -> Nullable<Text>,
        active -> Nullable<Bool>,
        data -> Text,
        version -> BigInt,
        created -> Text,
        last_modified -> Text,
    }
}

diesel::table! {
    group_members (group_id, member_id) {
        group_id -> Text,
        member_id -> Text,
        member_type -> Text,
    }
}

diesel::table! {
    tokens (id) {
        id -> Text,
        name -> Text,
        token_hash -> Text,
        kind -> Text,
        created -> Text,
        scopes -> Text,
        last_used -> Nullable<Text>,
        revoked -> Nullable<Text>,
    }
}

diesel::table! {
    oauth_clients (client_id) {
        client_id -> Text,
        name -> Text,
        secret_hash -> Text,
        scopes -> Text,
        token_lifetime_mins -> Integer,
        created -> Text,
        last_used -> Nullable<Text>,
        revoked -> Nullable<Text>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        secret -> Text,
        created -> Text,
        retired -> Nullable<Text>,
    }
}

diesel::table! {
    data_migrations (name) {
        name -> Text,
        done -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(resources, group_members, tokens);

diesel::table! {
    outbox_jobs (id) {
        id -> BigInt,
        connector -> Text,
        resource_type -> Text,
        resource_id -> Text,
        event -> Text,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Text,
        locked_until -> Nullable<Text>,
        last_error -> Nullable<Text>,
        created -> Text,
        updated -> Text,
        secret -> Nullable<Text>,
        wait_token -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        claimed_by -> Nullable<Text>,
        priority -> Integer,
        dry_run_calls -> Nullable<Text>,
        failure -> Nullable<Text>,
    }
}

diesel::table! {
    mappings (resource_id, connector) {
        resource_id -> Text,
        connector -> Text,
        resource_type -> Text,
        target_id -> Nullable<Text>,
        principal -> Nullable<Text>,
        last_version -> Nullable<BigInt>,
        state -> Text,
        last_error -> Nullable<Text>,
        attempts -> Integer,
        created -> Text,
        updated -> Text,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    notifications (tracking_id) {
        tracking_id -> Text,
        connector -> Text,
        resource_id -> Text,
        kind -> Text,
        state -> Text,
        error -> Nullable<Text>,
        created -> Text,
        updated -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(outbox_jobs, mappings, resources, notifications);

diesel::table! {
    audit (id) {
        id -> BigInt,
        at -> Text,
        credential -> Text,
        client -> Text,
        request_id -> Text,
        method -> Text,
        route -> Text,
        resource_type -> Nullable<Text>,
        resource_id -> Nullable<Text>,
        paths -> Text,
        status -> Integer,
    }
}

diesel::table! {
    connectors_seen (name) {
        name -> Text,
        first_seen -> Text,
        released_through -> BigInt,
        mode -> Nullable<Text>,
    }
}

diesel::table! {
    sync_runs (id) {
        id -> BigInt,
        connector -> Text,
        all_resources -> Integer,
        total -> BigInt,
        started -> Text,
    }
}

diesel::table! {
    brake_log (id) {
        id -> BigInt,
        connector -> Text,
        at -> Text,
        job_id -> Nullable<BigInt>,
    }
}

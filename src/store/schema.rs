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
    }
}

diesel::allow_tables_to_appear_in_same_query!(resources, group_members, tokens);

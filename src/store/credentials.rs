//! Credentials in SQL: tokens, OAuth clients and signing keys.

use diesel::prelude::*;

use super::error::{classify, StoreResult};
use super::schema::{oauth_clients, signing_keys, tokens};
use super::sql::SqlStore;
use super::{ClientRow, SigningKeyRow, TokenRow, TokenStore};

type TokenColumns = (
    tokens::id,
    tokens::name,
    tokens::kind,
    tokens::created,
    tokens::scopes,
    tokens::last_used,
    tokens::revoked,
);

const TOKEN_COLUMNS: TokenColumns = (
    tokens::id,
    tokens::name,
    tokens::kind,
    tokens::created,
    tokens::scopes,
    tokens::last_used,
    tokens::revoked,
);

impl TokenStore for SqlStore {
    fn add_token(&self, row: &TokenRow, hash: &str) -> StoreResult<()> {
        self.write(|conn| {
            diesel::insert_into(tokens::table)
                .values((
                    tokens::id.eq(&row.id),
                    tokens::name.eq(&row.name),
                    tokens::token_hash.eq(hash),
                    tokens::kind.eq(&row.kind),
                    tokens::created.eq(&row.created),
                    tokens::scopes.eq(&row.scopes),
                ))
                .execute(conn)
                .map_err(classify)?;
            Ok(())
        })
    }

    fn token_by_hash(&self, hash: &str) -> StoreResult<Option<TokenRow>> {
        let mut conn = self.conn()?;
        Ok(tokens::table
            .filter(tokens::token_hash.eq(hash))
            .select(TOKEN_COLUMNS)
            .first(&mut *conn)
            .optional()?)
    }

    fn count_tokens(&self, kind: &str) -> StoreResult<u64> {
        let mut conn = self.conn()?;
        let n: i64 = tokens::table
            .filter(tokens::kind.eq(kind))
            .filter(tokens::revoked.is_null())
            .count()
            .get_result(&mut *conn)?;
        Ok(n as u64)
    }

    fn list_tokens(&self) -> StoreResult<Vec<TokenRow>> {
        let mut conn = self.conn()?;
        Ok(tokens::table
            .select(TOKEN_COLUMNS)
            .order((tokens::created, tokens::id))
            .load(&mut *conn)?)
    }

    fn revoke_tokens(&self, name: &str, now: &str) -> StoreResult<usize> {
        self.write(|conn| {
            Ok(diesel::update(
                tokens::table
                    .filter(tokens::name.eq(name))
                    .filter(tokens::revoked.is_null()),
            )
            .set(tokens::revoked.eq(now))
            .execute(conn)?)
        })
    }

    fn touch_token(&self, id: &str, now: &str) -> StoreResult<()> {
        self.write(|conn| {
            diesel::update(tokens::table.find(id))
                .set(tokens::last_used.eq(now))
                .execute(conn)?;
            Ok(())
        })
    }

    fn add_client(&self, row: &ClientRow) -> StoreResult<()> {
        self.write(|conn| {
            diesel::insert_into(oauth_clients::table)
                .values(row)
                .execute(conn)
                .map_err(classify)?;
            Ok(())
        })
    }

    fn client(&self, client_id: &str) -> StoreResult<Option<ClientRow>> {
        let mut conn = self.conn()?;
        Ok(oauth_clients::table
            .find(client_id)
            .first(&mut *conn)
            .optional()?)
    }

    fn list_clients(&self) -> StoreResult<Vec<ClientRow>> {
        let mut conn = self.conn()?;
        Ok(oauth_clients::table
            .order((oauth_clients::created, oauth_clients::name))
            .load(&mut *conn)?)
    }

    fn revoke_client(&self, name: &str, now: &str) -> StoreResult<usize> {
        self.write(|conn| {
            Ok(diesel::update(
                oauth_clients::table
                    .filter(oauth_clients::name.eq(name))
                    .filter(oauth_clients::revoked.is_null()),
            )
            .set(oauth_clients::revoked.eq(now))
            .execute(conn)?)
        })
    }

    fn touch_client(&self, client_id: &str, now: &str) -> StoreResult<()> {
        self.write(|conn| {
            diesel::update(oauth_clients::table.find(client_id))
                .set(oauth_clients::last_used.eq(now))
                .execute(conn)?;
            Ok(())
        })
    }

    fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRow>> {
        let mut conn = self.conn()?;
        Ok(signing_keys::table
            .order((signing_keys::created, signing_keys::kid))
            .load(&mut *conn)?)
    }

    fn add_signing_key(&self, row: &SigningKeyRow) -> StoreResult<()> {
        self.write(|conn| {
            diesel::insert_into(signing_keys::table)
                .values(row)
                .execute(conn)
                .map_err(classify)?;
            Ok(())
        })
    }

    fn reseal_signing_key(&self, kid: &str, secret: &str) -> StoreResult<()> {
        self.write(|conn| {
            diesel::update(signing_keys::table.find(kid))
                .set(signing_keys::secret.eq(secret))
                .execute(conn)?;
            Ok(())
        })
    }

    fn retire_signing_keys(&self, keep: &str, now: &str) -> StoreResult<()> {
        self.write(|conn| {
            diesel::update(
                signing_keys::table
                    .filter(signing_keys::kid.ne(keep))
                    .filter(signing_keys::retired.is_null()),
            )
            .set(signing_keys::retired.eq(now))
            .execute(conn)?;
            Ok(())
        })
    }

    fn drop_signing_keys(&self, before: &str) -> StoreResult<usize> {
        self.write(|conn| {
            Ok(diesel::delete(
                signing_keys::table
                    .filter(signing_keys::retired.is_not_null())
                    .filter(signing_keys::retired.lt(before)),
            )
            .execute(conn)?)
        })
    }
}

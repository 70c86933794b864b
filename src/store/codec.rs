//! The change model's enums as text columns: read by name (an unknown name is an error,
//! never a guess) and written by name.

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, Queryable};
use diesel::sql_types::Text;

use crate::model::{Event, Failure, JobState, MappingState, NotificationState, ResourceKind};

macro_rules! text_column {
    ($($ty:ty),+) => {$(
        impl<DB> FromSql<Text, DB> for $ty
        where
            DB: Backend,
            String: FromSql<Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
                let name = String::from_sql(bytes)?;
                Ok(name.parse::<$ty>()?)
            }
        }

        impl<DB> Queryable<Text, DB> for $ty
        where
            DB: Backend,
            $ty: FromSql<Text, DB>,
        {
            type Row = $ty;
            fn build(row: $ty) -> deserialize::Result<$ty> {
                Ok(row)
            }
        }
    )+};
}

text_column!(
    Event,
    Failure,
    JobState,
    MappingState,
    NotificationState,
    ResourceKind
);

//! A raw SQL fragment with bind parameters, usable as a diesel expression on both backends:
//! how filters and sort keys on JSON attributes reach the database without ever putting a
//! client's value into SQL text.

use std::marker::PhantomData;

use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, ValidGrouping,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Double, Text};
use diesel::{Connection, QueryResult};

use super::db::DbConn;

pub type Db = <DbConn as Connection>::Backend;

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Sql(String),
    Text(String),
    Double(f64),
    BigInt(i64),
}

/// SQL text and binds in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frag {
    pub pieces: Vec<Piece>,
}

impl Frag {
    pub fn sql(s: impl Into<String>) -> Frag {
        Frag {
            pieces: vec![Piece::Sql(s.into())],
        }
    }

    pub fn push_sql(&mut self, s: &str) -> &mut Frag {
        self.pieces.push(Piece::Sql(s.to_string()));
        self
    }

    pub fn text(&mut self, v: impl Into<String>) -> &mut Frag {
        self.pieces.push(Piece::Text(v.into()));
        self
    }

    pub fn double(&mut self, v: f64) -> &mut Frag {
        self.pieces.push(Piece::Double(v));
        self
    }

    pub fn bigint(&mut self, v: i64) -> &mut Frag {
        self.pieces.push(Piece::BigInt(v));
        self
    }

    pub fn append(&mut self, other: Frag) -> &mut Frag {
        self.pieces.extend(other.pieces);
        self
    }

    /// `(self)`.
    pub fn wrapped(self) -> Frag {
        let mut f = Frag::sql("(");
        f.append(self);
        f.push_sql(")");
        f
    }

    pub fn into_expr<ST>(self) -> Raw<ST> {
        Raw {
            frag: self,
            _st: PhantomData,
        }
    }
}

/// A [`Frag`] as an expression of SQL type `ST`.
#[derive(Debug, Clone)]
pub struct Raw<ST> {
    frag: Frag,
    _st: PhantomData<ST>,
}

impl<ST: diesel::expression::TypedExpressionType> Expression for Raw<ST> {
    type SqlType = ST;
}

impl<ST, QS> AppearsOnTable<QS> for Raw<ST> where Raw<ST>: Expression {}
impl<ST, QS> SelectableExpression<QS> for Raw<ST> where Raw<ST>: Expression {}

impl<ST> ValidGrouping<()> for Raw<ST> {
    type IsAggregate = is_aggregate::Never;
}

impl<ST> QueryId for Raw<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST> QueryFragment<Db> for Raw<ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Db>) -> QueryResult<()> {
        out.unsafe_to_cache_prepared();
        for p in &self.frag.pieces {
            match p {
                Piece::Sql(s) => out.push_sql(s),
                Piece::Text(t) => out.push_bind_param::<Text, String>(t)?,
                Piece::Double(d) => out.push_bind_param::<Double, f64>(d)?,
                Piece::BigInt(i) => out.push_bind_param::<BigInt, i64>(i)?,
            }
        }
        Ok(())
    }
}

//! Lists and searches: filters, sorting, offset and cursor paging, and rendering each
//! resource as the client asked for it.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn encode_cursor(created: &str, id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{created}\n{id}"))
}

pub(super) fn decode_cursor(cursor: &str) -> BridgeResult<(String, String)> {
    use base64::Engine;
    let invalid =
        || ScimError::InvalidCursor(format!("'{cursor}' is not a cursor this server issued"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    if text.contains('\0') {
        return Err(invalid().into());
    }
    let (created, id) = text.split_once('\n').ok_or_else(invalid)?;
    Ok((created.to_string(), id.to_string()))
}

pub(super) fn norm_data_copy(row: &ResourceRow) -> Map<String, Value> {
    serde_json::from_str(&row.data).unwrap_or_default()
}

/// The ids of a filter made only of `value eq "..."` terms joined by `or`.
pub(super) fn value_equalities(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Or(a, b) => {
            let mut ids = value_equalities(a)?;
            ids.extend(value_equalities(b)?);
            Some(ids)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::String(id),
        } if path.urn.is_none()
            && path.sub.is_none()
            && path.attr.eq_ignore_ascii_case("value") =>
        {
            Some(vec![id.clone()])
        }
        _ => None,
    }
}

impl Resources {
    /// GET on a collection (and POST .search).
    pub fn list(&self, rt_name: &str, query: &ListQuery, base: &str) -> BridgeResult<Value> {
        let rt = self.rt(rt_name)?;
        if let Some(f) = &query.filter {
            f.check(&self.reg, rt)?;
        }
        let sort = query.sort.as_ref().map(|(p, d)| (p, *d));
        if let Some(cursor) = &query.cursor {
            let after = if cursor.is_empty() {
                None
            } else {
                Some(decode_cursor(cursor)?)
            };
            let spec = ListSpec {
                resource_type: &rt.name,
                filter: query.filter.as_ref(),
                sort: None,
                page: Page::After {
                    after,
                    limit: query.count.saturating_add(1),
                },
                count_total: cursor.is_empty(),
                max_bytes: self.page_bytes,
            };
            let Listed {
                total,
                mut rows,
                cut,
            } = self.store.list(&spec, &self.reg)?;
            let more = cut || rows.len() as u64 > query.count;
            rows.truncate(query.count as usize);
            let next = match (more, rows.last()) {
                (true, Some(last)) => Some(encode_cursor(&last.created, &last.id)),
                _ => None,
            };
            let bodies = self.render_many(rt, rows, base, &query.projection)?;
            let total = cursor.is_empty().then_some(total);
            return Ok(cursor_response(total, bodies, next));
        }
        let spec = ListSpec {
            resource_type: &rt.name,
            filter: query.filter.as_ref(),
            sort,
            page: Page::Offset {
                offset: query.start_index - 1,
                limit: query.count,
            },
            count_total: true,
            max_bytes: self.page_bytes,
        };
        let Listed { total, rows, .. } = self.store.list(&spec, &self.reg)?;
        let bodies = self.render_many(rt, rows, base, &query.projection)?;
        Ok(list_response(total, query.start_index, bodies))
    }

    /// POST /.search at the root: every resource type, in resource-type order then creation
    /// order, paged across them. A filter on an attribute a type lacks matches none of it.
    pub fn search_all(&self, query: &ListQuery, base: &str) -> BridgeResult<Value> {
        if query.cursor.is_some() || query.sort.is_some() {
            return Err(ScimError::InvalidValue(
                "a search across resource types takes neither cursor nor sortBy".into(),
            )
            .into());
        }
        let mut total = 0u64;
        let mut bodies = Vec::new();
        let mut skip = query.start_index - 1;
        let mut room = query.count;
        let mut bytes = self.page_bytes;
        let mut any_type = false;
        for rt in self.reg.resource_types() {
            if let Some(f) = &query.filter {
                if f.check(&self.reg, rt).is_err() {
                    continue;
                }
            }
            any_type = true;
            let spec = ListSpec {
                resource_type: &rt.name,
                filter: query.filter.as_ref(),
                sort: None,
                page: Page::Offset {
                    offset: skip,
                    limit: room,
                },
                count_total: true,
                max_bytes: bytes,
            };
            let Listed {
                total: n,
                rows,
                cut: full,
            } = self.store.list(&spec, &self.reg)?;
            total += n;
            skip = skip.saturating_sub(n);
            bytes = bytes.saturating_sub(rows.iter().map(stored_bytes).sum());
            room -= rows.len() as u64;
            if full || bytes == 0 {
                // The page is full: later types only count toward the total.
                room = 0;
            }
            bodies.extend(self.render_many(rt, rows, base, &query.projection)?);
        }
        if !any_type {
            if let Some(f) = &query.filter {
                return Err(ScimError::InvalidFilter(format!(
                    "'{f}' names attributes no resource type has"
                ))
                .into());
            }
        }
        Ok(list_response(total, query.start_index, bodies))
    }

    pub(super) fn render(
        &self,
        rt: &ResourceType,
        row: ResourceRow,
        base: &str,
        projection: &Projection,
    ) -> BridgeResult<Rendered> {
        self.render_one(rt, row, None, base, projection)
    }

    /// One resource with its ETag and location; `known_groups` as for `render_with`.
    pub(super) fn render_one(
        &self,
        rt: &ResourceType,
        row: ResourceRow,
        known_groups: Option<Vec<crate::store::GroupRef>>,
        base: &str,
        projection: &Projection,
    ) -> BridgeResult<Rendered> {
        let tag = etag(row.version);
        let location = location(base, rt, &row.id);
        let mut bodies = self.render_with(rt, vec![row], known_groups, base, projection)?;
        let body = bodies
            .pop()
            .ok_or_else(|| ScimError::Internal("nothing rendered".into()))?;
        Ok(Rendered {
            body,
            etag: tag,
            location,
        })
    }

    pub(super) fn render_many(
        &self,
        rt: &ResourceType,
        rows: Vec<ResourceRow>,
        base: &str,
        projection: &Projection,
    ) -> BridgeResult<Vec<Value>> {
        self.render_with(rt, rows, None, base, projection)
    }

    /// Renders rows; `known_groups`, when given, are the users' groups already read
    /// (else they are read here when the projection wants them).
    pub(super) fn render_with(
        &self,
        rt: &ResourceType,
        rows: Vec<ResourceRow>,
        known_groups: Option<Vec<crate::store::GroupRef>>,
        base: &str,
        projection: &Projection,
    ) -> BridgeResult<Vec<Value>> {
        let is_user = rt.schema == USER_SCHEMA;
        let is_group = rt.schema == GROUP_SCHEMA;
        let mut groups: HashMap<String, Vec<Value>> = HashMap::new();
        if is_user && projection.wants(&self.reg, rt, "groups") && !rows.is_empty() {
            let refs = match known_groups {
                Some(g) => g,
                None => {
                    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                    self.store.groups_of(&ids)?
                }
            };
            for g in refs {
                let mut v = json!({ "value": g.group_id, "$ref": format!("{base}/Groups/{}", g.group_id), "type": "direct" });
                if let (Some(d), Some(o)) = (g.display, v.as_object_mut()) {
                    o.insert("display".into(), Value::String(d));
                }
                groups.entry(g.member_id).or_default().push(v);
            }
        }
        let want_members = is_group && projection.wants(&self.reg, rt, "members");
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let data: Map<String, Value> = serde_json::from_str(&row.data)
                .map_err(|e| BridgeError::Store(StoreError::Corrupt(format!("{}: {e}", row.id))))?;
            let mut doc = Map::new();
            let mut schemas = vec![Value::String(rt.schema.clone())];
            for ext in &rt.extensions {
                if data.contains_key(&ext.schema) {
                    schemas.push(Value::String(ext.schema.clone()));
                }
            }
            doc.insert("schemas".into(), Value::Array(schemas));
            doc.insert("id".into(), Value::String(row.id.clone()));
            doc.extend(data);
            if let Some(gs) = groups.remove(&row.id) {
                doc.insert("groups".into(), Value::Array(gs));
            }
            if want_members {
                let members: Vec<Value> = self
                    .store
                    .members(&row.id)?
                    .into_iter()
                    .map(|m| {
                        let endpoint = if m.kind == "Group" { "Groups" } else { "Users" };
                        let mut v = json!({ "value": m.id, "$ref": format!("{base}/{endpoint}/{}", m.id), "type": m.kind });
                        if let (Some(d), Some(o)) = (m.display, v.as_object_mut()) {
                            o.insert("display".into(), Value::String(d));
                        }
                        v
                    })
                    .collect();
                if !members.is_empty() {
                    doc.insert("members".into(), Value::Array(members));
                }
            }
            doc.insert(
                "meta".into(),
                json!({
                    "resourceType": rt.name,
                    "created": row.created,
                    "lastModified": row.last_modified,
                    "location": location(base, rt, &row.id),
                    "version": etag(row.version),
                }),
            );
            out.push(projection.apply(&self.reg, rt, Value::Object(doc)));
        }
        Ok(out)
    }
}

/// What a stored resource costs a page: its document and what rendering adds to it.
fn stored_bytes(row: &ResourceRow) -> usize {
    row.data.len() + crate::store::PAGE_ROW_OVERHEAD
}

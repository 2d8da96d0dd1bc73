//! The directory's projection: units, users, devices, categories and visit rules become the
//! rows of their tables. A change to units, users or categories can change every report's
//! derived state (who handles it, its deadlines), and a change to the visit rules every
//! household's clocks: [`Indexer::finish`] redoes those once per transaction.

use rusqlite::params;

use super::{readable, Indexer};
use crate::directory::{Category, Device, Unit, User, VisitRules};
use crate::document::{Collection, Doc};
use crate::error::{Db, Error, Result};

impl Indexer<'_> {
    /// Re-reads one record of the directory.
    pub(super) fn directory_record(&mut self, doc: &Doc, collection: Collection, key: &str) -> Result<()> {
        self.roster_changed |= matches!(collection, Collection::Units | Collection::Users | Collection::Categories);
        self.units_changed |= collection == Collection::Units;
        match collection {
            Collection::Units => self.keyed(doc, collection, key, "units", |u: &Unit| u.id.as_str(), Self::unit),
            Collection::Users => self.keyed(doc, collection, key, "users", |u: &User| u.id.as_str(), Self::user),
            Collection::Devices => {
                self.keyed(doc, collection, key, "devices", |d: &Device| d.id.as_str(), Self::device)
            }
            Collection::Categories => {
                self.keyed(doc, collection, key, "categories", |c: &Category| c.id.as_str(), Self::category)
            }
            Collection::VisitRules => {
                self.rules_changed = true;
                match doc.get_int(Collection::VisitRules, key) {
                    Some(h) if h > 0 => {
                        self.tx
                            .execute(
                                "INSERT OR REPLACE INTO visit_rules (rule, hours) VALUES (?1, ?2)",
                                params![key, h],
                            )
                            .db()?;
                        Ok(())
                    }
                    _ => {
                        self.tx.execute("DELETE FROM visit_rules WHERE rule = ?1", [key]).db()?;
                        Ok(())
                    }
                }
            }
            _ => Ok(()),
        }
    }

    /// Re-reads a record that names itself by its key: its row is written, or, when the record
    /// is gone, not readable or names another id, the row of `table` under `key` is deleted.
    fn keyed<T: serde::de::DeserializeOwned>(
        &mut self,
        doc: &Doc,
        collection: Collection,
        key: &str,
        table: &'static str,
        id: fn(&T) -> &str,
        write: fn(&mut Self, &T) -> Result<()>,
    ) -> Result<()> {
        match readable(self.tx, doc, collection, key, doc.get_map::<T>(collection, key))? {
            Some(record) if id(&record) == key => write(self, &record),
            _ => self.delete(table, key),
        }
    }

    /// Removes every row of one of the directory's collections.
    pub(super) fn clear_directory(&mut self, collection: Collection) -> Result<()> {
        if !matches!(
            collection,
            Collection::Units
                | Collection::Users
                | Collection::Devices
                | Collection::Categories
                | Collection::VisitRules
        ) {
            return Ok(());
        }
        self.tx.execute(&format!("DELETE FROM {collection}"), []).db()?;
        self.rules_changed |= collection == Collection::VisitRules;
        self.units_changed |= collection == Collection::Units;
        Ok(())
    }

    /// Deletes a directory record's row.
    fn delete(&mut self, table: &'static str, id: &str) -> Result<()> {
        self.tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id]).db()?;
        Ok(())
    }

    pub fn unit(&mut self, u: &Unit) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO units (id, kind, parent_id, name, deleted) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .db()?
            .execute(params![u.id.as_str(), u.kind.as_str(), u.parent.as_ref().map(|p| p.as_str()), u.name, u.deleted])
            .db()?;
        Ok(())
    }

    pub fn user(&mut self, u: &User) -> Result<()> {
        self.tx.prepare_cached(
            "INSERT OR REPLACE INTO users (id, name, role, unit_id, department, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        ).db()?
        .execute(params![u.id.as_str(), u.name.expose(), u.role.as_str(), u.unit.as_str(), u.department, u.deleted]).db()?;
        Ok(())
    }

    pub fn device(&mut self, d: &Device) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO devices (id, user_id, actor, deleted, revoked_at, server, public_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .db()?
            .execute(params![d.id, d.user.as_str(), d.actor, d.deleted, d.revoked_at, d.server, d.public_key])
            .db()?;
        Ok(())
    }

    pub fn category(&mut self, c: &Category) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO categories (id, name, triage_hours, feedback_hours, resolve_hours, deleted,
                                                  class_resolve_hours, duplicate_radius_m, duplicate_window_hours)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .db()?
            .execute(params![
                c.id.as_str(),
                c.name,
                c.triage_hours,
                c.feedback_hours,
                c.resolve_hours,
                c.deleted,
                serde_json::to_string(&c.resolve_hours_by_class).map_err(|e| Error::storage(e.to_string()))?,
                c.duplicate_radius_m,
                c.duplicate_window_hours
            ])
            .db()?;
        Ok(())
    }
}

pub(crate) fn load_rules(tx: &rusqlite::Connection) -> Result<VisitRules> {
    let mut stmt = tx.prepare("SELECT rule, hours FROM visit_rules").db()?;
    let entries = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).db()?;
    Ok(VisitRules::from_entries(entries.collect::<rusqlite::Result<Vec<_>>>().db()?))
}

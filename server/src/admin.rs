//! A client for the operator's admin calls (seeding documents, enrolment codes, moving workers,
//! revoking devices, converting old grid documents), used by `doorstep demo` and the benches; operators can make the same calls with
//! curl (see `docs/OPERATIONS.md`).

use doorstep_core::sync::api::{Enrolment, EnrolmentRequest, ErrorBody, MoveRequest};
use doorstep_core::sync::http::runtime;
use doorstep_core::{DocId, Error, Result, UnitId, UserId};

pub struct AdminClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(base_url: &str, admin_token: &str) -> AdminClient {
        AdminClient {
            base: base_url.trim_end_matches('/').to_string(),
            token: admin_token.to_string(),
            http: reqwest::Client::new(),
        }
    }

    /// Puts a whole document on the server (the office's register before phones enrol).
    pub fn import(&self, doc: &DocId, bytes: Vec<u8>) -> Result<()> {
        let url = format!("{}/v1/admin/documents?doc={doc}", self.base);
        self.call(self.http.post(url).body(bytes)).map(|_| ())
    }

    /// A one-time enrolment code for a device of `user`, valid for `valid_hours`.
    pub fn enrolment_code(&self, user: &UserId, valid_hours: u32) -> Result<String> {
        let body = EnrolmentRequest { user_id: user.as_str().to_string(), valid_hours };
        let url = format!("{}/v1/admin/enrolments", self.base);
        let answer = self.call(self.http.post(url).json(&body))?;
        let enrolment: Enrolment = serde_json::from_slice(&answer).map_err(|e| Error::Network(e.to_string()))?;
        Ok(enrolment.code)
    }

    /// Moves a worker to another unit (`POST /v1/admin/users/{id}/unit`).
    pub fn move_user(&self, user: &UserId, unit: &UnitId) -> Result<()> {
        let url = format!("{}/v1/admin/users/{user}/unit", self.base);
        self.call(self.http.post(url).json(&MoveRequest { unit: unit.to_string() })).map(|_| ())
    }

    pub fn revoke(&self, device_id: &str) -> Result<()> {
        let url = format!("{}/v1/admin/devices/{device_id}", self.base);
        self.call(self.http.delete(url)).map(|_| ())
    }

    /// Converts the server's old grid documents, recorded for the admin `as_admin`
    /// (`POST /v1/admin/convert-grids`).
    pub fn convert_grids(&self, as_admin: &UserId) -> Result<doorstep_core::Converted> {
        let url = format!("{}/v1/admin/convert-grids?as={as_admin}", self.base);
        let answer = self.call(self.http.post(url))?;
        serde_json::from_slice(&answer).map_err(|e| Error::Network(e.to_string()))
    }

    fn call(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>> {
        runtime().block_on(async {
            let resp = req.bearer_auth(&self.token).send().await.map_err(|e| Error::Network(e.to_string()))?;
            let status = resp.status();
            let body = resp.bytes().await.map_err(|e| Error::Network(e.to_string()))?.to_vec();
            if status.is_success() {
                Ok(body)
            } else {
                Err(ErrorBody::refusal(status.as_u16(), &body))
            }
        })
    }
}

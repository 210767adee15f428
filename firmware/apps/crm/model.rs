//! CRM records (seed 002 §2.8, §2.30-2.34, §4.1): customers `#C<n>`, cases `#T<n>`, FAQ, tags,
//! business formats, custom fields, workflows and their steps. Plain data with serde, checked
//! by [`super::Crm`].

use super::fields::FieldKind;
use std::collections::BTreeMap;

/// Who changed a record and when (登録 / 更新).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stamp {
    /// Unix ms.
    pub at_ms: u64,
    /// The web user.
    pub by: String,
}

/// A customer (顧客).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Customer {
    /// `#C<id>`.
    pub id: u64,
    /// 顧客コード.
    pub code: String,
    /// 業務: the business format's name, if any.
    pub format: Option<String>,
    /// 名称.
    pub name: String,
    /// 電話番号: one or more.
    pub phones: Vec<String>,
    /// メール.
    pub email: String,
    /// Format and custom field values by field name.
    pub fields: BTreeMap<String, String>,
    /// 備考.
    pub note: String,
    /// タグ (names).
    pub tags: Vec<String>,
    /// 登録.
    pub created: Stamp,
    /// 更新.
    pub updated: Stamp,
}

/// A case (案件).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Case {
    /// `#T<id>`.
    pub id: u64,
    /// 題名.
    pub title: String,
    /// ステータス, e.g. 作業中 / 完了.
    pub status: String,
    /// 顧客.
    pub customer: Option<u64>,
    /// 担当: a web user.
    pub owner: Option<String>,
    /// タグ.
    pub tags: Vec<String>,
    /// The workflow and its current step.
    pub step: Option<(String, String)>,
    /// When the case entered its current step (Unix ms; 0 when in none), so the time in the
    /// step counts from there after a restart (workflow statistics).
    pub step_entered_ms: u64,
    /// 詳細.
    pub detail: String,
    /// 注記.
    pub notes: String,
    /// Custom field values.
    pub fields: BTreeMap<String, String>,
    /// 登録.
    pub created: Stamp,
    /// 更新.
    pub updated: Stamp,
}

/// An FAQ entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Faq {
    /// Id.
    pub id: u64,
    /// 題名.
    pub title: String,
    /// タグ.
    pub tags: Vec<String>,
    /// 詳細.
    pub detail: String,
    /// 登録.
    pub created: Stamp,
    /// 更新.
    pub updated: Stamp,
}

/// A tag (タグ).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Tag {
    /// 題名 (the key).
    pub name: String,
    /// Text colour `#rrggbb`.
    pub fg: String,
    /// Background colour `#rrggbb`.
    pub bg: String,
    /// 詳細.
    pub detail: String,
}

/// Left or right column on the customer page (表示位置).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// Left.
    #[default]
    Left,
    /// Right.
    Right,
}

/// A field of a business format.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FormatField {
    /// 名称.
    pub name: String,
    /// 属性.
    pub kind: FieldKind,
    /// 必須.
    #[serde(default)]
    pub required: bool,
    /// 表示位置.
    #[serde(default)]
    pub column: Column,
    /// 選択項目.
    #[serde(default)]
    pub choices: Vec<String>,
}

/// A business format (業務フォーマット).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BusinessFormat {
    /// 業務名称 (the key).
    pub name: String,
    /// Its fields in order.
    pub fields: Vec<FormatField>,
    /// Extensions allowed to use it (empty: everyone).
    pub agents: Vec<String>,
}

/// What a custom field belongs to (カテゴリ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 顧客.
    #[default]
    Customer,
    /// 案件.
    Case,
}

/// A custom field (カスタムフィールド).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CustomField {
    /// 名称 (the key within its category).
    pub name: String,
    /// カテゴリ.
    pub category: Category,
    /// 区分: text, number, date or list only.
    pub kind: FieldKind,
    /// 選択項目.
    #[serde(default)]
    pub choices: Vec<String>,
}

/// A button of a workflow step: a label and the next step (`None` = end).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepButton {
    /// Label, e.g. 次へ.
    pub label: String,
    /// 次のステップ, or end.
    pub next: Option<String>,
}

/// A workflow step (ワークフローステップ).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct WorkflowStep {
    /// 名称 (the key).
    pub name: String,
    /// 詳細.
    pub detail: String,
    /// 音声ファイル.
    pub audio: Option<String>,
    /// 色.
    pub color: String,
    /// Buttons 1-4.
    pub buttons: Vec<StepButton>,
}

/// A workflow (ワークフロー).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Workflow {
    /// 名称 (the key).
    pub name: String,
    /// 最初のステップ.
    pub first_step: String,
}

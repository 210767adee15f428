pub mod trunk;

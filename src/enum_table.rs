//! Enums that own a table: [`indexed_enum!`] defines a fieldless enum together with `ALL` (every
//! variant, in order), `COUNT` and `index()`, all derived from the one variant list, so a table
//! sized `[T; E::COUNT]` and indexed by `e.index()` has a row for every variant and a new
//! variant can never count as another.

/// Defines a fieldless enum with `ALL`, `COUNT` and `index()` (see the module docs).
macro_rules! indexed_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident, )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order: `ALL[v.index()] == v`.
            pub const ALL: [$name; [$($name::$variant),+].len()] = [$($name::$variant),+];
            /// How many variants there are (the size of a table indexed by this enum).
            pub const COUNT: usize = Self::ALL.len();

            /// This variant's row in a table of [`Self::COUNT`] rows.
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}
pub(crate) use indexed_enum;

#[cfg(test)]
mod tests {
    indexed_enum! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Colour {
            /// First.
            Red,
            Green,
            Blue,
        }
    }

    #[test]
    fn all_count_and_index_agree() {
        assert_eq!(Colour::COUNT, 3);
        for (i, c) in Colour::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
        assert_eq!(Colour::ALL[Colour::Blue.index()], Colour::Blue);
    }
}
